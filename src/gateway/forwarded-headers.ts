import type { IncomingMessage } from 'node:http';
import { REQUEST_ID_HEADER } from '../runtime/types.js';

/**
 * The headers an instance gets for a caller's request, as a flat [name, value, …] list with
 * lowercase names: `host` first, then the caller's own but `notForwarded` and `x-nimbus-*`, the
 * gateway's `traceparent` in place of the caller's when tracing, the `x-forwarded-*` trio and the
 * request id. One place for both hops: requests (gateway.ts) and upgraded connections (upgrade.ts).
 */
export function forwardedHeaders(
  req: IncomingMessage,
  requestId: string,
  notForwarded: ReadonlySet<string>,
  traceparent?: string,
): string[] {
  const host = req.headers.host ?? 'localhost';
  const headers: string[] = ['host', host];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (notForwarded.has(key) || key.startsWith('x-nimbus-') || (traceparent && key === 'traceparent')) continue;
    headers.push(key, raw[i + 1]!);
  }
  if (traceparent) headers.push('traceparent', traceparent);
  headers.push('x-forwarded-host', host, 'x-forwarded-proto', 'http');
  if (req.socket.remoteAddress) headers.push('x-forwarded-for', req.socket.remoteAddress);
  headers.push(REQUEST_ID_HEADER, requestId);
  return headers;
}
