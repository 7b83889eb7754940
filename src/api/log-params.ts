import type { Context } from 'hono';
import { NimbusError } from '../core/errors.js';
import { type LogFilter, parseStatusFilter } from '../observe/log-store.js';

/** The filters of `GET …/logs` besides `since` and `limit`: `requestId`, `status`, `until`, `kind`. */
export function logFilterParams(c: Context): Omit<LogFilter, 'function' | 'since'> {
  const out: Omit<LogFilter, 'function' | 'since'> = {};
  const requestId = c.req.query('requestId');
  if (requestId) out.requestId = requestId;
  const status = c.req.query('status');
  if (status) {
    out.status = parseStatusFilter(status);
    if (!out.status)
      throw new NimbusError(
        'NIMBUS_ERR_INVALID_REQUEST',
        `status: expected a class (5xx), a code (404) or a range (400-499), got ${JSON.stringify(status)}`,
      );
  }
  const until = c.req.query('until');
  if (until) {
    const t = /^\d+$/.test(until) ? Number(until) : Date.parse(until);
    if (Number.isNaN(t))
      throw new NimbusError(
        'NIMBUS_ERR_INVALID_REQUEST',
        `until: expected an ISO time or epoch milliseconds, got ${JSON.stringify(until)}`,
      );
    out.until = t;
  }
  const kind = c.req.query('kind');
  if (kind) {
    if (kind !== 'request' && kind !== 'lines')
      throw new NimbusError(
        'NIMBUS_ERR_INVALID_REQUEST',
        `kind: expected request or lines, got ${JSON.stringify(kind)}`,
      );
    out.kind = kind;
  }
  return out;
}
