/** Plain-text formatting for human output. Machine consumers use `--json`. */

/**
 * Left-aligned columns separated by two spaces, header first; the last column is not padded so
 * lines carry no trailing blanks. Cells are strings; callers format numbers and dates.
 */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all
    .map((row) =>
      header.map((_, i) => (i === header.length - 1 ? (row[i] ?? '') : (row[i] ?? '').padEnd(widths[i]))).join('  '),
    )
    .map((line) => line.trimEnd())
    .join('\n');
}

/** `812 B`, `1.2 KB`, `3.4 MB` (powers of 1024, one decimal below 10). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** How long ago `iso` was, coarsely: `just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago`. */
export function formatAge(iso: string | undefined, now: number): string {
  const then = iso ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(then)) return '-';
  const s = Math.max(0, Math.floor((now - then) / 1000));
  if (s < 1) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

/** Aligned `key  value` lines, for the `get` view. */
export function formatFields(fields: [string, string][], indent = ''): string {
  const width = Math.max(...fields.map(([key]) => key.length));
  return fields.map(([key, value]) => `${indent}${`${key}:`.padEnd(width + 1)}  ${value}`.trimEnd()).join('\n');
}
