import Database from 'better-sqlite3';
import type { InstanceLogRecord } from '../instances/types.js';

export interface LogQuery {
  function: string;
  /** Epoch ms: only lines at or after it. */
  since?: number;
  requestId?: string;
  /** Most recent N lines (returned oldest first). Default 100. */
  limit?: number;
}

/** Function logs: appended by the instance manager, read by the API, bounded by count and age. */
export interface LogStore {
  append(record: InstanceLogRecord): void;
  query(q: LogQuery): InstanceLogRecord[];
  /** Live lines of one function; returns the unsubscribe function. */
  follow(fn: string, listener: (record: InstanceLogRecord) => void): () => void;
  /** Forgets a deleted function's lines. */
  deleteFunction(fn: string): void;
  close(): void;
}

export interface LogStoreOptions {
  /** SQLite file (or ':memory:'). */
  path: string;
  /** Lines kept per function. Default 10,000. */
  maxLinesPerFunction?: number;
  /** Lines older than this are dropped. Default 7 days. */
  maxAgeMs?: number;
}

export function createLogStore(options: LogStoreOptions): LogStore {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, function TEXT NOT NULL, revision TEXT NOT NULL,
    instance TEXT NOT NULL, request_id TEXT, stream TEXT NOT NULL, line TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS logs_function ON logs (function, id);`);
  const insert = db.prepare(
    'INSERT INTO logs (time, function, revision, instance, request_id, stream, line) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const maxLines = options.maxLinesPerFunction ?? 10_000;
  const maxAge = options.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  const listeners = new Map<string, Set<(r: InstanceLogRecord) => void>>();
  let pending: InstanceLogRecord[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  let sincePrune = 0;

  // Lines are written in batches: one transaction per 50 ms instead of one fsync-ish write per line.
  const flush = db.transaction(() => {
    const batch = pending;
    pending = [];
    for (const r of batch)
      insert.run(r.time, r.function, r.revision, r.instance, r.requestId ?? null, r.stream, r.line);
    sincePrune += batch.length;
    if (sincePrune >= 1000) {
      sincePrune = 0;
      prune();
    }
  });
  const flushNow = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (pending.length > 0) flush();
  };

  function prune(): void {
    db.prepare('DELETE FROM logs WHERE time < ?').run(Date.now() - maxAge);
    const fns = db.prepare('SELECT function, COUNT(*) AS n, MAX(id) AS last FROM logs GROUP BY function').all() as {
      function: string;
      n: number;
      last: number;
    }[];
    for (const f of fns)
      if (f.n > maxLines)
        db.prepare('DELETE FROM logs WHERE function = ? AND id <= ?').run(f.function, f.last - maxLines);
  }

  return {
    append(record) {
      pending.push(record);
      flushTimer ??= setTimeout(flushNow, 50);
      const set = listeners.get(record.function);
      if (set) for (const l of set) l(record);
    },
    query(q) {
      flushNow();
      const where = ['function = ?'];
      const args: unknown[] = [q.function];
      if (q.since !== undefined) {
        where.push('time >= ?');
        args.push(q.since);
      }
      if (q.requestId) {
        where.push('request_id = ?');
        args.push(q.requestId);
      }
      args.push(Math.min(Math.max(q.limit ?? 100, 1), 10_000));
      const rows = db
        .prepare(`SELECT * FROM logs WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`)
        .all(...args) as Record<string, any>[];
      return rows.reverse().map((r) => ({
        time: r.time,
        function: r.function,
        revision: r.revision,
        instance: r.instance,
        ...(r.request_id ? { requestId: r.request_id } : {}),
        stream: r.stream,
        line: r.line,
      }));
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
    },
    close() {
      flushNow();
      db.close();
    },
  };
}
