import type { JobState, QueueDepth } from '../queue/types.js';
import type { InvocationRequest } from './invoker.js';

/**
 * Where the record of a finished async invocation goes, as a URI:
 * `function:NAME` (an async invocation of NAME, the record as its JSON body),
 * `http://…` / `https://…` (a webhook: POST of the record), `nats:SUBJECT` (a NATS publish).
 */
export type Destination = string;

/** Per-function async settings (Lambda's event-invoke config), kept in the `async-config` bucket. */
export interface AsyncConfig {
  /** Retries after the first attempt. Default 2. */
  maxRetries?: number;
  /** Seconds an event may wait (counted from enqueue) before it is dead-lettered. Default 21600 (6 h). */
  maxEventAge?: number;
  /** Async invocations of this function running at once on this node. Default 10. */
  concurrency?: number;
  destinations?: { onSuccess?: Destination; onFailure?: Destination };
}

/** Node-wide defaults and bounds of async invocation. */
export interface AsyncDefaults {
  maxRetries: number;
  maxEventAgeMs: number;
  concurrency: number;
  /** First retry delay; doubles per retry up to `retryMaxDelayMs`. */
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** Fraction of each retry delay taken off at random (0 = exact delays). */
  retryJitter: number;
  /** How long succeeded / failed invocations stay visible. */
  resultRetentionMs: number;
  /** How long dead-lettered invocations stay in the DLQ. */
  deadRetentionMs: number;
  /** Bytes of a function's answer kept as the result. */
  maxResultBytes: number;
  /** Added to the function's timeout to make the lease (visibility timeout). */
  leaseMarginMs: number;
  /** How often old results are pruned. */
  pruneIntervalMs: number;
}

export const DEFAULT_ASYNC: AsyncDefaults = {
  maxRetries: 2,
  maxEventAgeMs: 6 * 3600_000,
  concurrency: 10,
  retryBaseDelayMs: 1000,
  retryMaxDelayMs: 5 * 60_000,
  retryJitter: 0.5,
  resultRetentionMs: 24 * 3600_000,
  deadRetentionMs: 14 * 24 * 3600_000,
  maxResultBytes: 256 * 1024,
  leaseMarginMs: 10_000,
  pruneIntervalMs: 60_000,
};

export interface EncodedBody {
  body: string;
  /** `utf8` when the bytes are valid UTF-8, else `base64`. */
  bodyEncoding: 'utf8' | 'base64';
}

/** An invocation as the API shows it. Times are ISO strings. */
export interface InvocationView {
  id: string;
  function: string;
  status: JobState;
  attempts: number;
  createdAt: string;
  enqueuedAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** queued after a failed attempt: when the next one starts. */
  nextAttemptAt?: string;
  lastError?: string;
  /** The tag or revision id the invocation was sent to (`/async/fn/NAME@TAG/…`). */
  tag?: string;
  request: { method: string; path: string; headers: Record<string, string>; bodyBytes: number };
  result?: {
    status: number;
    headers: Record<string, string>;
    truncated: boolean;
    platformError?: string;
  } & EncodedBody;
}

export interface EnqueueOptions {
  /** POSTed the invocation record when it ends, whatever the outcome (`x-nimbus-callback-url`). */
  callbackUrl?: string;
  /** Caller-chosen id (idempotent enqueue), e.g. derived from a broker's message id. */
  id?: string;
  /**
   * A traffic tag or revision id (`/async/fn/NAME@TAG/…`): every attempt runs the revision it names
   * at that time, not a weighted pick. Unknown at enqueue: 404 NIMBUS_ERR_REVISION_NOT_FOUND.
   */
  tag?: string;
}

/** The async-invocation surface the API and triggers use. */
export interface AsyncInvocations {
  /** Stores the invocation durably; throws NIMBUS_ERR_FUNCTION_NOT_FOUND for an unknown function. */
  enqueue(name: string, request: InvocationRequest, options?: EnqueueOptions): Promise<InvocationView>;
  get(id: string): Promise<InvocationView | undefined>;
  list(name: string, options?: { state?: JobState; limit?: number }): Promise<InvocationView[]>;
  counts(name: string): Promise<Record<JobState, number>>;
  /**
   * The function's async backlog — `ready` (due now), `delayed` (waiting for a retry), `running` —
   * cheap enough to poll each scaling tick: what an autoscaler adds to its in-flight requests.
   */
  depth(name: string): Promise<QueueDepth>;
  /** How many of the function's async invocations may run at once (its `concurrency` setting). */
  concurrencyLimit(name: string): number;
  /** Dead-lettered invocations of a function (its DLQ), newest first. */
  deadLetters(name: string, limit?: number): Promise<InvocationView[]>;
  /** Re-queues dead invocations (all, or the given ids) with attempts reset. Returns the ids. */
  redrive(name: string, ids?: string[]): Promise<string[]>;
  getConfig(name: string): Promise<AsyncConfig>;
  setConfig(name: string, config: AsyncConfig): Promise<AsyncConfig>;
  /** Resolves with the invocation once it is succeeded, failed or dead. */
  waitFor(id: string, signal?: AbortSignal): Promise<InvocationView>;
}
