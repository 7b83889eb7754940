// The dashboard's only way to the node: the public API under /api/v1 (the same one the CLI uses).

/** GET a JSON resource; undefined on 404 (a route or a resource that is not there, e.g. on an older node). */
export async function get(path) {
  const res = await fetch(`/api/v1${path}`);
  if (res.status === 404) return undefined;
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.error?.message ?? `${res.status} ${res.statusText}`);
  }
  return res.json();
}

export const enc = encodeURIComponent;

/** Request records (one per invocation) of a function since `sinceMs` ago, oldest first. */
export async function requests(name, sinceMs, limit = 1000) {
  const since = Date.now() - sinceMs;
  const body = await get(`/functions/${enc(name)}/logs?kind=request&since=${since}&limit=${limit}`);
  return (body?.logs ?? []).map((r) => ({ ...r, t: Date.parse(r.time) }));
}

/**
 * count, 5xx errors, cold starts and p50/p95 duration of a list of request records. An upgraded
 * connection (101, a WebSocket) counts as a request but its life is not a latency: left out of p50/p95.
 */
export function summarize(records) {
  const durations = records
    .filter((r) => r.status !== 101)
    .map((r) => r.durationMs ?? 0)
    .sort((a, b) => a - b);
  const pick = (q) =>
    durations.length ? durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] : undefined;
  return {
    count: records.length,
    errors: records.filter((r) => (r.status ?? 0) >= 500).length,
    cold: records.filter((r) => r.cold).length,
    p50: pick(0.5),
    p95: pick(0.95),
  };
}

export function ago(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function bytes(n) {
  if (n === undefined || n === null) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function ms(n) {
  if (n === undefined || n === null) return '–';
  return n < 10 ? `${n.toFixed(2)} ms` : n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}
