import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { type Clock, systemClock } from '../core/clock.js';
import type { InstanceLogRecord } from '../instances/types.js';
import { openLogDatabase } from './log-writer.js';
import { startLogWriterThread } from './log-writer-thread.js';
import { viewRequest } from './request-records.js';

export { createLiveFilter, parseStatusFilter, requestLine, requestRecord } from './request-records.js';

/**
 * A log record: a line an instance wrote (`stdout`/`stderr`), a platform event about it
 * (`system`), or the one record every invocation leaves when it ends (`request`), which carries
 * status, duration and cold/warm (as Lambda's REPORT line does).
 */
export interface LogRecord extends Omit<InstanceLogRecord, 'stream'> {
  stream: InstanceLogRecord['stream'] | 'request';
  /** Request records: the status the caller got. */
  status?: number;
  durationMs?: number;
  cold?: boolean;
  /** Request records: the catalogue code when the platform made the answer. */
  error?: string;
  /** Request records: the W3C trace id, when the request was traced. */
  traceId?: string;
}

/** Which records a query or a follow wants. Every field narrows; none given means all of a function's. */
export interface LogFilter {
  function: string;
  /** Epoch ms: only records at or after it. */
  since?: number;
  /** Epoch ms: only records before it. */
  until?: number;
  requestId?: string;
  /**
   * Only requests whose status is in [min, max] (`parseStatusFilter` reads `5xx`, `404`,
   * `400-499`): their request records and the lines they logged.
   */
  status?: { min: number; max: number };
  /** `request`: only request records; `lines`: only what instances and the platform logged. */
  kind?: 'request' | 'lines';
}

export interface LogQuery extends LogFilter {
  /** Most recent N records (returned oldest first). Default 100, at most 10,000. */
  limit?: number;
}

/** How much is kept. Whatever limit is reached first drops the oldest records. */
export interface LogRetention {
  /** Records kept per function. Default 10,000. */
  maxRecordsPerFunction: number;
  /** Records older than this are dropped. Default 7 days. */
  maxAgeMs: number;
  /** Approximate bytes kept over all functions (each record's line plus 64). Default 256 MB. */
  maxBytes: number;
}

export const DEFAULT_LOG_RETENTION: LogRetention = {
  maxRecordsPerFunction: 10_000,
  maxAgeMs: 7 * 24 * 3600 * 1000,
  maxBytes: 256 * 1024 * 1024,
};

/**
 * Function logs and per-invocation records: appended by the instance manager and the gateway,
 * read by the API, bounded by count, age and size. Appends are buffered and handed in batches to
 * the log writer thread, which writes them and holds retention (log-writer-thread.ts); the main
 * thread only reads.
 */
export interface LogStore {
  append(record: LogRecord): void;
  /** Sees every record appended before it was called, and none appended after. */
  query(q: LogQuery): Promise<LogRecord[]>;
  /** Live records of one function, as appended; returns the unsubscribe function. */
  follow(fn: string, listener: (record: LogRecord) => void): () => void;
  /** Forgets a deleted function's records (queries made after it see none). */
  deleteFunction(fn: string): void;
  /** Applies retention now. Count and size hold after every batch written; age every `pruneIntervalMs`. */
  prune(): Promise<void>;
  /** Writes every record appended, then closes the database. */
  close(): Promise<void>;
}

export interface LogStoreOptions extends Partial<LogRetention> {
  /** SQLite file (or ':memory:', which is a temporary file here: two connections share it). */
  path: string;
  clock?: Clock;
  /** How often age-based retention runs without appends. Default 60 s. */
  pruneIntervalMs?: number;
  /** Tests: sees each writer thread as it starts (to end one and watch the store recover). */
  onWriterThread?: (worker: Worker) => void;
  /** Tests: the writer thread's module (one that cannot start, say). */
  writerEntry?: URL;
}

// Records are handed over in batches: each is one message to the writer thread and one reply,
// so fewer, larger batches cost the main thread less (bench/observe.ts). Follows never wait for it.
const FLUSH_MS = 200;
const MAX_BATCH = 4096;
/** How long a query waits for the writer thread before it reads what is on disk anyway. */
const SYNC_TIMEOUT_MS = 10_000;

export function createLogStore(options: LogStoreOptions): LogStore {
  const clock = options.clock ?? systemClock;
  const retention: LogRetention = {
    maxRecordsPerFunction: options.maxRecordsPerFunction ?? DEFAULT_LOG_RETENTION.maxRecordsPerFunction,
    maxAgeMs: options.maxAgeMs ?? DEFAULT_LOG_RETENTION.maxAgeMs,
    maxBytes: options.maxBytes ?? DEFAULT_LOG_RETENTION.maxBytes,
  };
  const tmp = options.path === ':memory:' ? mkdtempSync(join(tmpdir(), 'nimbus-logs-')) : undefined;
  const path = tmp ? join(tmp, 'logs.db') : options.path;
  // Made (and upgraded) here, before the thread starts, so a data dir that cannot hold it fails the start.
  const db = openLogDatabase(path);
  db.pragma('query_only = ON');
  const writer = startLogWriterThread(
    { path, retention, epoch: randomUUID() },
    { onStart: options.onWriterThread, entry: options.writerEntry },
  );
  const listeners = new Map<string, Set<(r: LogRecord) => void>>();
  let pending: LogRecord[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  const flushNow = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (pending.length === 0) return;
    writer.write(pending);
    pending = [];
  };
  const prune = async () => {
    flushNow();
    await writer.request({ t: 'prune', now: clock.now() });
  };

  let stopped = false;
  let cancelPrune = () => {};
  const schedulePrune = () => {
    cancelPrune = clock.setTimer(() => {
      if (stopped) return;
      void prune();
      schedulePrune();
    }, options.pruneIntervalMs ?? 60_000);
  };
  schedulePrune();

  return {
    append(record) {
      pending.push(record);
      if (pending.length >= MAX_BATCH) flushNow();
      else flushTimer ??= setTimeout(flushNow, FLUSH_MS);
      const set = listeners.get(record.function);
      if (set) {
        const view = record.stream === 'request' ? viewRequest(record) : record;
        for (const l of set) l(view);
      }
    },
    async query(q) {
      flushNow();
      const lastId = await writer.request({ t: 'sync' }, SYNC_TIMEOUT_MS);
      const { where, args } = sqlFilter(q);
      // The writer goes on while this waits: records written since the request are left out,
      // so a follow's history (read after it subscribed) never repeats its live records.
      if (lastId !== undefined) {
        where.push('id <= ?');
        args.push(lastId);
      }
      args.push(Math.min(Math.max(q.limit ?? 100, 1), 10_000));
      const rows = db
        .prepare(`SELECT * FROM logs WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`)
        .all(...args) as Record<string, any>[];
      return rows.reverse().map(fromRow);
    },
    follow(fn, listener) {
      let set = listeners.get(fn);
      if (!set) {
        set = new Set();
        listeners.set(fn, set);
      }
      set.add(listener);
      return () => set.delete(listener);
    },
    deleteFunction(fn) {
      flushNow();
      void writer.request({ t: 'delete', fn });
    },
    prune,
    async close() {
      stopped = true;
      cancelPrune();
      flushNow();
      // The writer closes last, so it is the one that folds the write-ahead log into the database.
      db.close();
      await writer.close();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    },
  };
}

function sqlFilter(q: LogFilter): { where: string[]; args: unknown[] } {
  const where = ['function = ?'];
  const args: unknown[] = [q.function];
  const add = (clause: string, ...values: unknown[]) => {
    where.push(clause);
    args.push(...values);
  };
  if (q.since !== undefined) add('time >= ?', q.since);
  if (q.until !== undefined) add('time < ?', q.until);
  if (q.requestId) add('request_id = ?', q.requestId);
  if (q.kind === 'request') where.push("stream = 'request'");
  if (q.kind === 'lines') where.push("stream != 'request'");
  if (q.status) {
    // A request's lines are written before its status is known: they match through its record.
    const { min, max } = q.status;
    add(
      `((stream = 'request' AND status BETWEEN ? AND ?) OR (stream != 'request' AND request_id IN
      (SELECT request_id FROM logs WHERE function = ? AND stream = 'request' AND status BETWEEN ? AND ?)))`,
      min,
      max,
      q.function,
      min,
      max,
    );
  }
  return { where, args };
}

function fromRow(r: Record<string, any>): LogRecord {
  const record: LogRecord = {
    time: r.time,
    function: r.function,
    revision: r.revision,
    instance: r.instance,
    ...(r.request_id ? { requestId: r.request_id } : {}),
    stream: r.stream,
    line: r.line,
  };
  if (r.stream !== 'request') return record;
  return viewRequest({
    ...record,
    status: r.status,
    durationMs: r.duration_ms,
    cold: r.cold === 1,
    error: r.error ?? undefined,
    traceId: r.trace_id ?? undefined,
  });
}
