import type { Job } from '../queue/types.js';
import type { InvocationResponse } from './invoker.js';
import type { EncodedBody, InvocationView } from './types.js';

/**
 * What an attempt's answer means for an async invocation:
 * - `success`: 1xx-3xx.
 * - `retry`: 5xx, any platform-made error (timeout, crash, start failure, overload, unknown
 *   function — it may be redeployed), 408 and 429. Lambda counts a function error as a failure
 *   and retries it; these are the HTTP shapes of that.
 * - `reject`: any other 4xx — the function refused this input, and the same input would be
 *   refused again. Final at once (state `failed`, the on-failure destination fires), not retried
 *   and not dead-lettered.
 */
export function classify(response: InvocationResponse): 'success' | 'retry' | 'reject' {
  if (response.platformError) return 'retry';
  const s = response.status;
  if (s < 400) return 'success';
  if (s >= 500 || s === 408 || s === 429) return 'retry';
  return 'reject';
}

/**
 * Delay before retry number `retry` (1-based): base, 2×base, 4×base… capped at `max`, then up to
 * `jitter` (a fraction) of it taken off at random, so invocations that failed together (a
 * dependency went down) do not all come back in the same millisecond. Never longer than the
 * nominal delay, so the maximum-event-age check stays conservative.
 */
export function retryDelayMs(retry: number, base: number, max: number, jitter = 0, random = Math.random): number {
  const nominal = Math.min(max, base * 2 ** Math.max(0, retry - 1));
  return Math.round(nominal * (1 - Math.min(1, Math.max(0, jitter)) * random()));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeBody(bytes: Uint8Array): EncodedBody {
  try {
    return { body: utf8.decode(bytes), bodyEncoding: 'utf8' };
  } catch {
    return { body: Buffer.from(bytes).toString('base64'), bodyEncoding: 'base64' };
  }
}

/** A one-line description of a failed attempt, kept as the job's `lastError`. */
export function describeFailure(response: InvocationResponse): string {
  if (response.platformError) {
    try {
      const parsed = JSON.parse(response.body.toString('utf8')) as { error?: { message?: string } };
      if (parsed.error?.message) return `${response.platformError}: ${parsed.error.message}`;
    } catch {
      // the function's own 500 body, tagged by the guest: not always JSON
    }
    return `${response.platformError} (HTTP ${response.status})`;
  }
  return `HTTP ${response.status}`;
}

/** The result kept with the job: status, headers and the bounded body, encoded for JSON. */
export function toResult(response: InvocationResponse): Record<string, unknown> {
  return {
    status: response.status,
    headers: response.headers,
    truncated: response.truncated,
    ...(response.platformError ? { platformError: response.platformError } : {}),
    ...(response.revision ? { revision: response.revision } : {}),
    ...encodeBody(response.body),
  };
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function toView(job: Job): InvocationView {
  const data = job.data as { method?: string; path?: string; headers?: Record<string, string> };
  const view: InvocationView = {
    id: job.id,
    function: job.queue,
    status: job.state,
    attempts: job.attempts,
    createdAt: iso(job.createdAt)!,
    enqueuedAt: iso(job.enqueuedAt)!,
    updatedAt: iso(job.updatedAt)!,
    request: {
      method: data.method ?? 'POST',
      path: data.path ?? '/',
      headers: data.headers ?? {},
      bodyBytes: job.body.length,
    },
  };
  if (job.startedAt !== undefined) view.startedAt = iso(job.startedAt);
  if (job.finishedAt !== undefined) view.finishedAt = iso(job.finishedAt);
  if (job.state === 'queued' && job.attempts > 0) view.nextAttemptAt = iso(job.availableAt);
  if (job.lastError !== undefined) view.lastError = job.lastError;
  const tag = (job.data as { tag?: string }).tag;
  if (tag !== undefined) view.tag = tag;
  if (job.result) view.result = job.result as unknown as InvocationView['result'];
  return view;
}

/** Why an invocation ended, in Lambda's destination vocabulary. */
export type Condition = 'Success' | 'FunctionRejected' | 'RetriesExhausted' | 'EventAgeExceeded';

/** The JSON record sent to destinations and callback URLs when an invocation ends. */
export function destinationRecord(job: Job, condition: Condition, now: number): Record<string, unknown> {
  const view = toView(job);
  return {
    version: '1.0',
    timestamp: new Date(now).toISOString(),
    condition,
    id: job.id,
    function: job.queue,
    status: view.status,
    attempts: job.attempts,
    request: { ...view.request, ...encodeBody(job.body) },
    ...(view.result ? { response: view.result } : {}),
    ...(job.lastError ? { error: job.lastError } : {}),
  };
}
