/**
 * The writing half of the log store: inserts batches and holds retention. It runs in the log
 * writer thread (log-worker.ts), which owns the only connection that writes; the main thread
 * only reads (log-store.ts).
 */
import Database from 'better-sqlite3';
import { decodeBatch, LOG_COLUMNS, type LogBatch, VALUES_PER_RECORD } from './log-batch.js';
import type { LogRetention } from './log-store.js';

export const RECORD_OVERHEAD = 64;
const INSERT_ROWS = 64;
/** Columns only request records fill; added to data dirs made before they existed. */
const REQUEST_COLUMNS = { status: 'INTEGER', duration_ms: 'REAL', cold: 'INTEGER', error: 'TEXT', trace_id: 'TEXT' };

/** Opens the log database, creating or upgrading its table. WAL: readers never wait for the writer. */
export function openLogDatabase(path: string): Database.Database {
  const db = new Database(path);
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
  return db;
}

export interface LogWriter {
  /** Writes batch number `batchId` (unless written before) and holds count and size retention. */
  write(batch: LogBatch, batchId: number): void;
  /** The id of the last record written (0 when none). */
  lastId(): number;
  /** Drops what is older than the age limit (as of `now`), then what is over count and size. */
  prune(now: number): void;
  deleteFunction(fn: string): void;
  close(): void;
}

/**
 * `epoch`: the store's own id. A batch is written with its number, in the same transaction, so a
 * thread started again after one died skips the batches its predecessor wrote but could not
 * confirm: records are written once.
 */
export function createLogWriter(path: string, retention: LogRetention, epoch: string): LogWriter {
  const db = openLogDatabase(path);
  db.exec('CREATE TABLE IF NOT EXISTS log_writer (epoch TEXT NOT NULL, batch INTEGER NOT NULL)');
  let lastBatch = (db.prepare('SELECT batch FROM log_writer WHERE epoch = ?').pluck().get(epoch) as number) ?? 0;
  const noteBatch = db.prepare('UPDATE log_writer SET epoch = ?, batch = ?');
  if (noteBatch.run(epoch, lastBatch).changes === 0) db.prepare('INSERT INTO log_writer VALUES (?, ?)').run(epoch, 0);
  const ROW = `(${Array(VALUES_PER_RECORD).fill('?').join(', ')})`;
  const insert = db.prepare(`INSERT INTO logs ${LOG_COLUMNS} VALUES ${ROW}`);
  // Rows go in INSERT_ROWS at a time: one statement step per 64 records costs less than 64 (bench/observe.ts).
  const insertMany = db.prepare(`INSERT INTO logs ${LOG_COLUMNS} VALUES ${Array(INSERT_ROWS).fill(ROW).join(', ')}`);
  const PER_INSERT = INSERT_ROWS * VALUES_PER_RECORD;
  let last = Number((db.prepare('SELECT coalesce(MAX(id), 0) FROM logs').pluck().get() as number | bigint) ?? 0);

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

  const write = db.transaction((batch: LogBatch, batchId: number) => {
    if (batchId <= lastBatch) return;
    noteBatch.run(epoch, batchId);
    const { values, functions, lineLengths } = decodeBatch(batch);
    let i = 0;
    for (; i + INSERT_ROWS <= batch.n; i += INSERT_ROWS)
      last = Number(
        insertMany.run(values.slice(i * VALUES_PER_RECORD, i * VALUES_PER_RECORD + PER_INSERT)).lastInsertRowid,
      );
    for (; i < batch.n; i++)
      last = Number(insert.run(values.slice(i * VALUES_PER_RECORD, (i + 1) * VALUES_PER_RECORD)).lastInsertRowid);
    const touched = new Set<string>();
    for (let j = 0; j < batch.n; j++) {
      touched.add(functions[j]!);
      counts.set(functions[j]!, (counts.get(functions[j]!) ?? 0) + 1);
      bytes += lineLengths[j]! + RECORD_OVERHEAD;
    }
    enforce(touched);
    lastBatch = batchId;
  });
  // A failed write rolls back: the counters are read again so they match what is on disk.
  const guarded =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A) => {
      try {
        fn(...args);
      } catch (e) {
        try {
          recount();
        } catch {}
        throw e;
      }
    };

  return {
    write: guarded(write),
    lastId: () => last,
    prune: guarded((now: number) => {
      db.transaction(() => {
        forget(dropOlderThan.all(now - retention.maxAgeMs) as { function: string; n: number }[]);
        enforce([...counts.keys()]);
      })();
    }),
    deleteFunction: guarded((fn: string) => {
      db.prepare('DELETE FROM logs WHERE function = ?').run(fn);
      recount();
    }),
    close: () => db.close(),
  };
}
