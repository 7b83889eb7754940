/**
 * `/fn/NAME/a/b?q=1` → NAME and `/a/b?q=1`; `/fn/NAME?q` → NAME and `/?q`; `/fn/NAME@TAG/x` →
 * NAME, TAG and `/x` (a tag, or a revision id such as `r3`: docs/traffic.md).
 */
export function splitFunctionUrl(url: string): { name: string; path: string; tag?: string } {
  // On every request: a scan, not a regex, and no decoding unless there is something to decode.
  const start = '/fn/'.length;
  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */) break;
    end++;
  }
  const raw = url.slice(start, end);
  const segment = raw.includes('%') ? decoded(raw) : raw;
  const path = end === url.length ? '/' : url.charCodeAt(end) === 63 ? `/${url.slice(end)}` : url.slice(end);
  const at = segment.indexOf('@');
  if (at === -1) return { name: segment, path };
  return { name: segment.slice(0, at), path, tag: segment.slice(at + 1) };
}

/** A malformed escape (`%E0%A4%A`) names no function: kept as is, it answers 404 instead of throwing. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
