/**
 * The Queue contract: durable, at-least-once work with leases (visibility timeouts), retries at a
 * chosen time, a dead-letter state, and the outcome of each job kept for inspection.
 *
 * The embedded implementation is SQLite (`createSqliteQueue`). The contract is shaped so a NATS
 * JetStream work-queue stream can implement it for clusters: `enqueue` is a publish to
 * `nimbus.async.<queue>` with `Nats-Msg-Id: id` (idempotent within the dedupe window), `lease` a
 * pull-consumer fetch with `ack_wait = visibilityMs`, `complete` an ack (the record goes to a KV
 * bucket of outcomes), `retry` a nak with delay, `deadLetter` a term plus a publish to the DLQ
 * stream, `get` / `list` reads of that KV bucket. Every implementation must pass
 * `runQueueConformance` (queue/conformance.ts).
 */

/** queued: waiting (first attempt or a retry); running: leased; then one of the final three. */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'dead';

export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'dead'];

export interface EnqueueInput {
  /** Which queue (for async invocations: the function name). */
  queue: string;
  /** Caller-chosen id; enqueueing an id that exists is a no-op that returns the existing job. */
  id?: string;
  /** Small JSON metadata (request line and headers, delivery options). */
  data: Record<string, unknown>;
  /** The payload bytes. */
  body?: Uint8Array;
  /** Not leasable before this many ms from now. Default 0. */
  delayMs?: number;
}

export interface Job {
  id: string;
  queue: string;
  state: JobState;
  data: Record<string, unknown>;
  body: Buffer;
  /** Times the job was leased (so: attempts started). */
  attempts: number;
  /** Epoch ms. `enqueuedAt` is reset by a redrive (the age limit counts from it); `createdAt` never changes. */
  createdAt: number;
  enqueuedAt: number;
  updatedAt: number;
  /** queued: when it may be leased; running: when its lease expires. */
  availableAt: number;
  startedAt?: number;
  finishedAt?: number;
  lastError?: string;
  /** What the last attempt produced (for invocations: status, headers, body), as JSON. */
  result?: Record<string, unknown>;
}

/** A leased job: settle it with its `token`, once. */
export interface LeasedJob extends Job {
  token: string;
}

export interface Outcome {
  error?: string;
  result?: Record<string, unknown>;
}

export interface QueueDepth {
  ready: number;
  delayed: number;
  running: number;
}

export interface ListOptions {
  queue?: string;
  state?: JobState;
  /** Newest first. Default 100. */
  limit?: number;
}

export interface Queue {
  /** Stores a job durably before resolving. Idempotent on `id`. */
  enqueue(input: EnqueueInput): Promise<Job>;
  /**
   * Leases up to `max` due jobs of `queue`, oldest first: each becomes `running`, its attempts
   * go up by one, and it is leased to nobody else for `visibilityMs`. A job whose lease expired
   * (its worker died or hung) is due again.
   */
  lease(queue: string, max: number, visibilityMs: number): Promise<LeasedJob[]>;
  /** Queues holding due work now (for the dispatcher's first look and its timer). */
  readyQueues(): Promise<string[]>;
  /**
   * Earliest time after `after` (default: any) at which a queued job becomes due or a lease
   * expires; undefined when none. With `after`, work already due then (a queue at its limit) does
   * not hide a later due time of another queue.
   */
  nextWakeAt(after?: number): Promise<number | undefined>;
  /**
   * Settles a leased job as succeeded or failed (final). Throws NIMBUS_ERR_CONFLICT when the
   * token is no longer the job's (the lease expired and another worker took it).
   */
  complete(id: string, token: string, state: 'succeeded' | 'failed', outcome?: Outcome): Promise<void>;
  /** Puts a leased job back, due at `at` (epoch ms). Same token rule as `complete`. */
  retry(id: string, token: string, at: number, outcome?: Outcome): Promise<void>;
  /** Moves a leased job to the dead-letter state. Same token rule as `complete`. */
  deadLetter(id: string, token: string, outcome?: Outcome): Promise<void>;
  get(id: string): Promise<Job | undefined>;
  list(options?: ListOptions): Promise<Job[]>;
  /** Jobs per state, for one queue or all. */
  counts(queue?: string): Promise<Record<JobState, number>>;
  /**
   * The backlog of one queue, cheap enough to poll (an index range, not a scan of the finished
   * jobs): `ready` queued and due now, `delayed` queued for later (retries), `running` leased.
   */
  depth(queue: string): Promise<QueueDepth>;
  /**
   * Dead jobs of `queue` (all, or those in `ids`) go back to `queued`, due now, with attempts
   * reset and `enqueuedAt` set to now. Returns the ids redriven.
   */
  redrive(queue: string, ids?: string[]): Promise<string[]>;
  /** Deletes final jobs finished before `before` (dead ones before `deadBefore`). Returns how many. */
  prune(before: number, deadBefore: number): Promise<number>;
  close(): Promise<void>;
}
