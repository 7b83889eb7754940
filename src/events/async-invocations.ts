import type { Clock } from '../core/clock.js';
import { hasCode, NimbusError } from '../core/errors.js';
import { formatTraceparent, newTraceContext, parseTraceparent, TRACEPARENT_HEADER } from '../core/trace-context.js';
import { FINAL_STATES, type Job, type LeasedJob, type Queue } from '../queue/types.js';
import type { Bucket } from '../store/types.js';
import { deliver, type NatsPublish, parseDestination } from './destinations.js';
import { createDispatcher, type Dispatcher } from './dispatcher.js';
import type { InvocationRequest, Invoker } from './invoker.js';
import {
  type Condition,
  classify,
  describeFailure,
  destinationRecord,
  retryDelayMs,
  toResult,
  toView,
} from './policy.js';
import {
  type AsyncConfig,
  type AsyncDefaults,
  type AsyncInvocations,
  DEFAULT_ASYNC,
  type EnqueueOptions,
  type InvocationView,
} from './types.js';

/** Internal queue of destination and callback deliveries (function names cannot start with `_`). */
export const DELIVERY_QUEUE = '_deliveries';

export interface AsyncInvocationsOptions {
  queue: Queue;
  invoker: Invoker;
  clock: Clock;
  /** Per-function settings (`async-config` bucket). */
  configs: Bucket<AsyncConfig>;
  /**
   * True when the function exists — and, given `tag`, has that tag or revision id (enqueue
   * answers 404 otherwise).
   */
  exists(name: string, tag?: string): boolean;
  /** The function's timeout in ms (the lease must outlast it). */
  timeoutMs(name: string): number | undefined;
  defaults?: Partial<AsyncDefaults>;
  /** For `nats:` destinations. */
  natsPublish?: NatsPublish;
}

export interface AsyncInvocationsNode extends AsyncInvocations {
  /** Loads the settings and starts dispatching (including work left from before a restart). */
  start(): Promise<void>;
  readonly dispatcher: Dispatcher;
  /** Stops dispatching; waits up to `timeoutMs` for running invocations. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Durable, at-least-once async invocation: enqueue → lease → invoke → settle, with retries and
 * exponential backoff, a maximum event age, a dead-letter queue, destinations and callbacks.
 * Deliveries are jobs themselves (on DELIVERY_QUEUE), so they survive a crash and are retried too;
 * their ids derive from the invocation, so re-running a settled-but-not-acked attempt after a crash
 * does not deliver twice.
 */
export function createAsyncInvocations(options: AsyncInvocationsOptions): AsyncInvocationsNode {
  const { queue, invoker, clock } = options;
  const d: AsyncDefaults = { ...DEFAULT_ASYNC, ...options.defaults };
  const configs = new Map<string, AsyncConfig>();
  const waiters = new Map<string, Set<(view: InvocationView) => void>>();
  let cancelPrune = () => {};
  let closed = false;

  const cfg = (name: string) => configs.get(name) ?? {};
  const maxRetries = (name: string) => (name === DELIVERY_QUEUE ? 5 : (cfg(name).maxRetries ?? d.maxRetries));
  const maxAgeMs = (name: string) => {
    const s = cfg(name).maxEventAge;
    return s === undefined ? d.maxEventAgeMs : s * 1000;
  };

  const concurrencyLimit = (name: string) => cfg(name).concurrency ?? d.concurrency;

  const dispatcher = createDispatcher({
    queue,
    clock,
    run,
    limit: (name) => concurrencyLimit(name),
    visibilityMs: (name) => (options.timeoutMs(name) ?? 60_000) + d.leaseMarginMs,
  });

  async function run(job: LeasedJob): Promise<void> {
    if (job.queue === DELIVERY_QUEUE) return runDelivery(job);
    const now = clock.now();
    if (now - job.enqueuedAt > maxAgeMs(job.queue)) {
      return finish(job, 'dead', 'EventAgeExceeded', {
        error: `Event older than the maximum event age of ${maxAgeMs(job.queue) / 1000} s`,
      });
    }
    const data = job.data as { method: string; path: string; headers: Record<string, string>; tag?: string };
    const response = await invoker.invoke(
      job.queue,
      { method: data.method, path: data.path, headers: data.headers, body: job.body },
      { requestId: job.id, attempt: job.attempts, ...(data.tag !== undefined ? { tag: data.tag } : {}) },
    );
    // Shutting down: leave the job leased; the next start puts it back (its attempt counted).
    if (closed && response.platformError === 'NIMBUS_ERR_SHUTTING_DOWN') return;
    const result = toResult(response);
    const verdict = classify(response);
    if (verdict === 'success') return finish(job, 'succeeded', 'Success', { result });
    const error = describeFailure(response);
    if (verdict === 'reject') return finish(job, 'failed', 'FunctionRejected', { result, error });
    return retryOrDie(job, { result, error });
  }

  async function runDelivery(job: LeasedJob): Promise<void> {
    const data = job.data as { target: string; headers?: Record<string, string> };
    try {
      await deliver(parseDestination(data.target), job.body, data.headers ?? {}, options.natsPublish);
    } catch (err) {
      return retryOrDie(job, { error: (err as Error).message });
    }
    await settle(() => queue.complete(job.id, job.token, 'succeeded'));
  }

  async function retryOrDie(job: LeasedJob, outcome: { result?: Record<string, unknown>; error: string }) {
    const now = clock.now();
    const at = now + retryDelayMs(job.attempts, d.retryBaseDelayMs, d.retryMaxDelayMs, d.retryJitter);
    if (job.attempts > maxRetries(job.queue)) return finish(job, 'dead', 'RetriesExhausted', outcome);
    if (at - job.enqueuedAt > maxAgeMs(job.queue)) return finish(job, 'dead', 'EventAgeExceeded', outcome);
    await settle(() => queue.retry(job.id, job.token, at, outcome));
  }

  /** Enqueues the destination and callback deliveries, then settles (so a crash in between re-runs, never loses). */
  async function finish(
    job: LeasedJob,
    state: 'succeeded' | 'failed' | 'dead',
    condition: Condition,
    outcome: { result?: Record<string, unknown>; error?: string },
  ): Promise<void> {
    const now = clock.now();
    if (job.queue !== DELIVERY_QUEUE) {
      const destinations = cfg(job.queue).destinations ?? {};
      const target = state === 'succeeded' ? destinations.onSuccess : destinations.onFailure;
      const callback = (job.data as { callbackUrl?: string }).callbackUrl;
      // Most invocations have neither: then the record is never built (it copies the whole request).
      if (target || callback) {
        const final: Job = {
          ...job,
          state,
          finishedAt: now,
          updatedAt: now,
          ...(outcome.error ? { lastError: outcome.error } : {}),
          ...(outcome.result ? { result: outcome.result } : {}),
        };
        const record = Buffer.from(JSON.stringify(destinationRecord(final, condition, now)));
        const base = `${job.id}.${job.enqueuedAt}`;
        if (target) await sendRecord(`${base}.destination`, target, record, job);
        if (callback) await sendRecord(`${base}.callback`, callback, record, job);
      }
    }
    const settled = await settle(() =>
      state === 'dead'
        ? queue.deadLetter(job.id, job.token, outcome)
        : queue.complete(job.id, job.token, state, outcome),
    );
    if (settled) void notifyWaiters(job.id);
  }

  async function sendRecord(id: string, target: string, record: Buffer, job: Job): Promise<void> {
    const dest = parseDestination(target);
    const headers = { 'x-nimbus-invocation-id': job.id, 'x-nimbus-function': job.queue };
    if (dest.kind === 'function') {
      await queue.enqueue({
        queue: dest.name,
        id,
        data: { method: 'POST', path: '/', headers: { 'content-type': 'application/json', ...headers } },
        body: record,
      });
      dispatcher.notify(dest.name);
      return;
    }
    await queue.enqueue({ queue: DELIVERY_QUEUE, id, data: { target, headers }, body: record });
    dispatcher.notify(DELIVERY_QUEUE);
  }

  /** Runs a settle; a lost lease (another worker took the job) is not an error here. */
  async function settle(fn: () => Promise<void>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (err) {
      if (hasCode(err, 'NIMBUS_ERR_CONFLICT')) return false;
      throw err;
    }
  }

  async function notifyWaiters(id: string): Promise<void> {
    const set = waiters.get(id);
    if (!set) return;
    const job = await queue.get(id);
    if (!job || !FINAL_STATES.includes(job.state)) return;
    waiters.delete(id);
    const view = toView(job);
    for (const fn of set) fn(view);
  }

  function schedulePrune(): void {
    cancelPrune = clock.setTimer(async () => {
      const now = clock.now();
      try {
        await queue.prune(now - d.resultRetentionMs, now - d.deadRetentionMs);
      } catch (err) {
        if (!closed) console.error('nimbus: pruning async results:', err);
      }
      if (!closed) schedulePrune();
    }, d.pruneIntervalMs);
  }

  return {
    dispatcher,
    async start() {
      for (const { key, value } of await options.configs.list()) configs.set(key, value);
      dispatcher.start();
      schedulePrune();
    },
    async close(timeoutMs) {
      closed = true;
      cancelPrune();
      await dispatcher.close(timeoutMs);
    },
    async enqueue(name, request: InvocationRequest, opts: EnqueueOptions = {}) {
      if (!options.exists(name, opts.tag)) {
        if (opts.tag !== undefined && options.exists(name))
          throw new NimbusError('NIMBUS_ERR_REVISION_NOT_FOUND', `Function ${name} has no tag or revision ${opts.tag}`);
        throw new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', `Function not found: ${name}`);
      }
      if (opts.callbackUrl !== undefined) {
        const dest = parseDestination(opts.callbackUrl, 'x-nimbus-callback-url');
        if (dest.kind !== 'webhook')
          throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'x-nimbus-callback-url: expected an http(s) URL');
      }
      const job = await queue.enqueue({
        queue: name,
        id: opts.id,
        data: {
          method: request.method,
          path: request.path,
          headers: withTraceparent(request.headers),
          // Stored with the request, so every retry (and a re-run after a restart) asks for the same tag.
          ...(opts.tag !== undefined ? { tag: opts.tag } : {}),
          ...(opts.callbackUrl ? { callbackUrl: opts.callbackUrl } : {}),
        },
        body: request.body,
      });
      dispatcher.notify(name);
      return toView(job);
    },
    async get(id) {
      const job = await queue.get(id);
      return job && job.queue !== DELIVERY_QUEUE ? toView(job) : undefined;
    },
    async list(name, opts = {}) {
      return (await queue.list({ queue: name, state: opts.state, limit: opts.limit })).map(toView);
    },
    counts: (name) => queue.counts(name),
    depth: (name) => queue.depth(name),
    concurrencyLimit,
    async deadLetters(name, limit = 100) {
      return (await queue.list({ queue: name, state: 'dead', limit })).map(toView);
    },
    async redrive(name, ids) {
      const done = await queue.redrive(name, ids);
      if (done.length > 0) dispatcher.notify(name);
      return done;
    },
    async getConfig(name) {
      return (await options.configs.get(name))?.value ?? {};
    },
    async setConfig(name, config) {
      const clean = validateConfig(config);
      await options.configs.put(name, clean);
      configs.set(name, clean);
      return clean;
    },
    waitFor(id, signal) {
      return new Promise<InvocationView>((resolve, reject) => {
        const set = waiters.get(id) ?? new Set();
        waiters.set(id, set);
        const done = (view: InvocationView) => {
          signal?.removeEventListener('abort', abort);
          resolve(view);
        };
        const abort = () => {
          set.delete(done);
          reject(signal?.reason);
        };
        set.add(done);
        signal?.addEventListener('abort', abort, { once: true });
        // It may have ended before we registered.
        void notifyWaiters(id);
      });
    },
  };
}

/** Checks an AsyncConfig from the API; throws NIMBUS_ERR_INVALID_REQUEST naming the field. */
export function validateConfig(raw: unknown): AsyncConfig {
  const bad = (why: string) => new NimbusError('NIMBUS_ERR_INVALID_REQUEST', why);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('Expected a JSON object');
  const input = raw as Record<string, unknown>;
  const out: AsyncConfig = {};
  for (const key of Object.keys(input))
    if (!['maxRetries', 'maxEventAge', 'concurrency', 'destinations'].includes(key)) throw bad(`Unknown field: ${key}`);
  const int = (key: 'maxRetries' | 'maxEventAge' | 'concurrency', min: number, max: number) => {
    const v = input[key];
    if (v === undefined) return;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
      throw bad(`${key}: expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    out[key] = v as number;
  };
  int('maxRetries', 0, 10);
  int('maxEventAge', 1, 6 * 3600);
  int('concurrency', 1, 1000);
  if (input.destinations !== undefined) {
    const dests = input.destinations as Record<string, unknown>;
    if (typeof dests !== 'object' || dests === null || Array.isArray(dests))
      throw bad('destinations: expected an object');
    out.destinations = {};
    for (const key of Object.keys(dests)) {
      if (key !== 'onSuccess' && key !== 'onFailure') throw bad(`destinations: unknown field ${key}`);
      if (dests[key] === undefined || dests[key] === null) continue;
      parseDestination(dests[key], `destinations.${key}`);
      out.destinations[key] = dests[key] as string;
    }
  }
  return out;
}

/**
 * The stored request carries a W3C `traceparent`: the caller's when valid, else a new trace's, so
 * the function's work joins the caller's trace whenever it runs (and every retry the same one).
 */
function withTraceparent(headers: Record<string, string>): Record<string, string> {
  if (parseTraceparent(headers[TRACEPARENT_HEADER])) return headers;
  return { ...headers, [TRACEPARENT_HEADER]: formatTraceparent(newTraceContext()) };
}
