import Database from 'better-sqlite3';
import { type Clock, systemClock } from '../core/clock.js';
import type { InstanceLogRecord } from '../instances/types.js';
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
 * read by the API, bounded by count, age and size. Appends are buffered and written in batches.
 */
export interface LogStore {
  append(record: LogRecord): void;
  query(q: LogQuery): LogRecord[];
  /** Live records of one function, as appended; returns the unsubscribe function. */
  follow(fn: string, listener: (record: LogRecord) => void): () => void;
  /** Forgets a deleted function's records. */
  deleteFunction(fn: string): void;
  /** Applies retention now. Count and size hold after every batch written; age every `pruneIntervalMs`. */
  prune(): void;
  close(): void;
}

export interface LogStoreOptions extends Partial<LogRetention> {
  /** SQLite file (or ':memory:'). */
  path: string;
  clock?: Clock;
  /** How often age-based retention runs without appends. Default 60 s. */
  pruneIntervalMs?: number;
}

const RECORD_OVERHEAD = 64;
// Records are written in batches: each write costs a transaction and a pass over the limits, so
// fewer, larger batches cost a request less (bench/observe.ts). Reads and follows never wait for it.
const FLUSH_MS = 200;
const INSERT_ROWS = 64;
/** Columns only request records fill; added to data dirs made before they existed. */
const REQUEST_COLUMNS = { status: 'INTEGER', duration_ms: 'REAL', cold: 'INTEGER', error: 'TEXT', trace_id: 'TEXT' };

export function createLogStore(options: LogStoreOptions): LogStore {
  const clock = options.clock ?? systemClock;
  const retention: LogRetention = {
    maxRecordsPerFunction: options.maxRecordsPerFunction ?? DEFAULT_LOG_RETENTION.maxRecordsPerFunction,
    maxAgeMs: options.maxAgeMs ?? DEFAULT_LOG_RETENTION.maxAgeMs,
    maxBytes: options.maxBytes ?? DEFAULT_LOG_RETENTION.maxBytes,
  };
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, function TEXT NOT NULL, revision TEXT NOT NULL,
    instance TEXT NOT NULL, request_id TEXT, stream TEXT NOT NULL, line TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS logs_function ON logs (function, id);`);
  // Data dirs made before request records existed lack their columns.
  const columns = new Set((db.prepare('PRAGMA table_info(logs)').all() as { name: string }[]).map((c) => c.name));
  // No index on request_id: every query is bounded by function (its index), and an index more
  // would cost every append (measured in bench/observe.ts).
  for (const [name, type] of Object.entries(REQUEST_COLUMNS))
    if (!columns.has(name)) db.exec(`ALTER TABLE logs ADD COLUMN ${name} ${type}`);
  const COLUMNS =
    '(time, function, revision, instance, request_id, stream, line, status, duration_ms, cold, error, trace_id)';
  const ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  const insert = db.prepare(`INSERT INTO logs ${COLUMNS} VALUES ${ROW}`);
  // Rows go in INSERT_ROWS at a time: one statement step per 64 records costs less than 64 (bench/observe.ts).
  const insertMany = db.prepare(`INSERT INTO logs ${COLUMNS} VALUES ${Array(INSERT_ROWS).fill(ROW).join(', ')}`);
  const args: unknown[] = new Array(INSERT_ROWS * 12);
  const put = (r: LogRecord, at: number, into: unknown[]) => {
    into[at] = r.time;
    into[at + 1] = r.function;
    into[at + 2] = r.revision;
    into[at + 3] = r.instance;
    into[at + 4] = r.requestId ?? null;
    into[at + 5] = r.stream;
    into[at + 6] = r.line;
    into[at + 7] = r.status ?? null;
    into[at + 8] = r.durationMs ?? null;
    into[at + 9] = r.cold === undefined ? null : r.cold ? 1 : 0;
    into[at + 10] = r.error ?? null;
    into[at + 11] = r.traceId ?? null;
  };
  const one: unknown[] = new Array(12);
  const listeners = new Map<string, Set<(r: LogRecord) => void>>();
  let pending: LogRecord[] = [];
  let flushTimer: NodeJS.Timeout | undefined;

  const flush = db.transaction(() => {
    const batch = pending;
    pending = [];
    let i = 0;
    for (; i + INSERT_ROWS <= batch.length; i += INSERT_ROWS) {
      for (let j = 0; j < INSERT_ROWS; j++) put(batch[i + j]!, j * 12, args);
      insertMany.run(args);
    }
    for (; i < batch.length; i++) {
      put(batch[i]!, 0, one);
      insert.run(one);
    }
    const touched = new Set<string>();
    for (const r of batch) {
      touched.add(r.function);
      counts.set(r.function, (counts.get(r.function) ?? 0) + 1);
      bytes += r.line.length + RECORD_OVERHEAD;
    }
    enforce(touched);
  });
  const flushNow = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (pending.length > 0) flush();
  };

  // Counts and bytes are kept in memory so that holding the limits after each batch costs only
  // the deletion of what is over them, never a scan of the table (bench/observe.ts).
  const size = `length(line) + ${RECORD_OVERHEAD}`;
  let counts = new Map<string, number>();
  let bytes = 0;
  function recount(): void {
    const rows = db.prepare('SELECT function, COUNT(*) AS n FROM logs GROUP BY function').all() as {
      function: string;
      n: number;
    }[];
    counts = new Map(rows.map((r) => [r.function, r.n]));
    bytes = (db.prepare(`SELECT coalesce(SUM(${size}), 0) AS b FROM logs`).get() as { b: number }).b;
  }
  // A function's oldest records go by id range, their size summed in SQL: no row comes back to JS.
  const nthOldestOf = db.prepare('SELECT id FROM logs WHERE function = ? ORDER BY id LIMIT 1 OFFSET ?').pluck();
  const sizeUpTo = db.prepare(`SELECT coalesce(SUM(${size}), 0) FROM logs WHERE function = ? AND id <= ?`).pluck();
  const dropUpToOf = db.prepare('DELETE FROM logs WHERE function = ? AND id <= ?');
  const oldest = db.prepare(`SELECT id, ${size} AS n FROM logs ORDER BY id`);
  const dropUpTo = db.prepare(`DELETE FROM logs WHERE id <= ? RETURNING function, ${size} AS n`);
  const dropOlderThan = db.prepare(`DELETE FROM logs WHERE time < ? RETURNING function, ${size} AS n`);
  const forget = (rows: { function: string; n: number }[]) => {
    for (const r of rows) {
      bytes -= r.n;
      counts.set(r.function, (counts.get(r.function) ?? 1) - 1);
    }
  };
  recount();

  /** Drops the oldest records of functions over their count, then the oldest of all while over the size. */
  function enforce(fns: Iterable<string>): void {
    for (const fn of fns) {
      const excess = (counts.get(fn) ?? 0) - retention.maxRecordsPerFunction;
      if (excess <= 0) continue;
      const cut = nthOldestOf.get(fn, excess - 1) as number;
      bytes -= sizeUpTo.get(fn, cut) as number;
      dropUpToOf.run(fn, cut);
      counts.set(fn, retention.maxRecordsPerFunction);
    }
    if (bytes <= retention.maxBytes) return;
    let freed = 0;
    let cut: number | undefined;
    for (const r of oldest.iterate() as Iterable<{ id: number; n: number }>) {
      freed += r.n;
      cut = r.id;
      if (bytes - freed <= retention.maxBytes) break;
    }
    if (cut !== undefined) forget(dropUpTo.all(cut) as { function: string; n: number }[]);
  }

  function prune(): void {
    forget(dropOlderThan.all(clock.now() - retention.maxAgeMs) as { function: string; n: number }[]);
    enforce([...counts.keys()]);
  }
  const flushAndPrune = () => {
    flushNow();
    prune();
  };

  let stopped = false;
  let cancelPrune = () => {};
  const schedulePrune = () => {
    cancelPrune = clock.setTimer(() => {
      if (stopped) return;
      flushAndPrune();
      schedulePrune();
    }, options.pruneIntervalMs ?? 60_000);
  };
  schedulePrune();

  return {
    append(record) {
      pending.push(record);
      flushTimer ??= setTimeout(flushNow, FLUSH_MS);
      const set = listeners.get(record.function);
      if (set) {
        const view = record.stream === 'request' ? viewRequest(record) : record;
        for (const l of set) l(view);
      }
    },
    query(q) {
      flushNow();
      const { where, args } = sqlFilter(q);
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
      db.prepare('DELETE FROM logs WHERE function = ?').run(fn);
      recount();
    },
    prune: flushAndPrune,
    close() {
      stopped = true;
      cancelPrune();
      flushNow();
      db.close();
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
