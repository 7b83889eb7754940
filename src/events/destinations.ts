import { NimbusError } from '../core/errors.js';
import { isValidFunctionName } from '../core/types.js';

/** Publishes bytes on a NATS subject (supplied by the composition root when NATS is configured). */
export type NatsPublish = (subject: string, payload: Uint8Array, headers: Record<string, string>) => Promise<void>;

export type ParsedDestination =
  | { kind: 'function'; name: string }
  | { kind: 'webhook'; url: string }
  | { kind: 'nats'; subject: string };

const SUBJECT_RE = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;

/** Parses a destination URI; throws NIMBUS_ERR_INVALID_REQUEST with the reason. */
export function parseDestination(raw: unknown, field = 'destination'): ParsedDestination {
  const bad = (why: string) =>
    new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `${field}: ${why}, got ${JSON.stringify(raw)}`);
  if (typeof raw !== 'string') throw bad('expected function:NAME, nats:SUBJECT or an http(s) URL');
  if (raw.startsWith('function:')) {
    const name = raw.slice('function:'.length);
    if (!isValidFunctionName(name)) throw bad('invalid function name');
    return { kind: 'function', name };
  }
  if (raw.startsWith('nats:')) {
    const subject = raw.slice('nats:'.length);
    if (!SUBJECT_RE.test(subject)) throw bad('invalid NATS subject');
    return { kind: 'nats', subject };
  }
  if (/^https?:\/\//.test(raw)) {
    try {
      return { kind: 'webhook', url: new URL(raw).href };
    } catch {
      throw bad('invalid URL');
    }
  }
  throw bad('expected function:NAME, nats:SUBJECT or an http(s) URL');
}

/**
 * Delivers a record to a webhook or a NATS subject (function destinations are async invocations
 * and never come here). Throws on failure so the delivery job is retried; a webhook counts as
 * delivered on any 2xx.
 */
export async function deliver(
  target: ParsedDestination,
  payload: Uint8Array,
  headers: Record<string, string>,
  publish: NatsPublish | undefined,
  timeoutMs = 10_000,
): Promise<void> {
  if (target.kind === 'webhook') {
    const res = await fetch(target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: payload,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`webhook ${target.url} answered ${res.status}`);
    return;
  }
  if (target.kind === 'nats') {
    if (!publish) throw new Error(`no NATS connection on this node for nats:${target.subject}`);
    await publish(target.subject, payload, { 'content-type': 'application/json', ...headers });
    return;
  }
  throw new Error(`not a delivery target: function:${target.name}`);
}
