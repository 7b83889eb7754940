/**
 * Per-invocation request records (one per request through the gateway) and the filters that
 * `nimbus logs --status / --request / --follow` apply to them. Stored by log-store.ts.
 */
import type { LogFilter, LogRecord } from './log-store.js';

/**
 * A live filter for `follow`: takes records as they are appended and returns those to send now.
 * With a status filter, a request's lines are held until its request record says whether it
 * matched (at most `maxHeld` lines over all requests; the oldest are dropped beyond that).
 */
export function createLiveFilter(q: LogFilter, maxHeld = 10_000): (record: LogRecord) => LogRecord[] {
  const held = new Map<string, LogRecord[]>();
  let heldCount = 0;
  return (r) => {
    if (q.requestId && r.requestId !== q.requestId) return [];
    if (q.until !== undefined && r.time >= q.until) return [];
    if (q.kind === 'request' && r.stream !== 'request') return [];
    if (q.kind === 'lines' && r.stream === 'request') return [];
    if (!q.status) return [r];
    const { min, max } = q.status;
    if (r.stream !== 'request') {
      if (!r.requestId) return [];
      let list = held.get(r.requestId);
      if (!list) {
        list = [];
        held.set(r.requestId, list);
      }
      list.push(r);
      if (++heldCount > maxHeld) {
        const [oldest] = held.keys();
        heldCount -= held.get(oldest!)!.length;
        held.delete(oldest!);
      }
      return [];
    }
    const lines = (r.requestId && held.get(r.requestId)) || [];
    if (r.requestId) held.delete(r.requestId);
    heldCount -= lines.length;
    return r.status !== undefined && r.status >= min && r.status <= max ? [...lines, r] : [];
  };
}

/** `5xx` → 500-599, `404` → 404-404, `400-499` → 400-499; undefined when malformed. */
export function parseStatusFilter(raw: string): { min: number; max: number } | undefined {
  let m = /^([1-5])xx$/i.exec(raw);
  if (m) return { min: Number(m[1]) * 100, max: Number(m[1]) * 100 + 99 };
  m = /^(\d{3})(?:-(\d{3}))?$/.exec(raw);
  if (!m) return undefined;
  const min = Number(m[1]);
  const max = Number(m[2] ?? m[1]);
  return min >= 100 && max <= 599 && min <= max ? { min, max } : undefined;
}

/**
 * The request record of one finished invocation, made on the request path: so it copies fields
 * and nothing more; its `line` is written when it is read (`requestLine`).
 */
export function requestRecord(
  r: {
    requestId: string;
    function: string;
    revision?: string;
    instance?: string;
    status: number;
    durationMs: number;
    cold: boolean;
    error?: string;
    traceId?: string;
  },
  time: number,
): LogRecord {
  return {
    time,
    function: r.function,
    revision: r.revision ?? '',
    instance: r.instance ?? '',
    requestId: r.requestId,
    stream: 'request',
    line: '',
    status: r.status,
    durationMs: r.durationMs,
    cold: r.cold,
    error: r.error,
    traceId: r.traceId,
  };
}

/** `200 3.1 ms warm`, `504 NIMBUS_ERR_TIMEOUT 30000 ms warm`, `200 180.5 ms cold start`. */
export function requestLine(r: Pick<LogRecord, 'status' | 'error' | 'durationMs' | 'cold'>): string {
  const error = r.error ? ` ${r.error}` : '';
  return `${r.status}${error} ${r.durationMs} ms ${r.cold ? 'cold start' : 'warm'}`;
}

/** A request record as read: duration to 0.01 ms, its line, and no empty fields. */
export function viewRequest(r: LogRecord): LogRecord {
  const out: LogRecord = { ...r, durationMs: Math.round((r.durationMs ?? 0) * 100) / 100 };
  if (!out.error) delete out.error;
  if (!out.traceId) delete out.traceId;
  out.line = requestLine(out);
  return out;
}
