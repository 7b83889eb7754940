/**
 * `/fn/NAME/a/b?q=1` → NAME and `/a/b?q=1`; `/fn/NAME?q` → NAME and `/?q`; `/fn/NAME@TAG/x` →
 * NAME, TAG and `/x` (a tag, or a revision id such as `r3`: docs/traffic.md).
 */
export function splitFunctionUrl(url: string): { name: string; path: string; tag?: string } {
  const rest = url.slice('/fn/'.length);
  const end = rest.search(/[/?]/);
  const segment = decodeURIComponent(end === -1 ? rest : rest.slice(0, end));
  const path = end === -1 ? '/' : rest.slice(end);
  const at = segment.indexOf('@');
  const named = at === -1 ? { name: segment } : { name: segment.slice(0, at), tag: segment.slice(at + 1) };
  return { ...named, path: path.startsWith('?') ? `/${path}` : path };
}
