import Database from 'better-sqlite3';

/** One function's use in one hour: what a pay-per-use bill would be made of. */
export interface UsageRow {
  function: string;
  /** Start of the hour, ISO. */
  hour: string;
  invocations: number;
  /** Memory (GB) × billed duration (s), durations rounded up to the millisecond as Lambda bills. */
  gbSeconds: number;
  coldStarts: number;
  /** Response body bytes sent to callers. */
  egressBytes: number;
}

export interface UsageEvent {
  function: string;
  time: number;
  durationMs: number;
  memoryMb: number;
  cold: boolean;
  egressBytes?: number;
}

export interface UsageMeter {
  record(event: UsageEvent): void;
  query(q: { function?: string; since?: number; until?: number }): UsageRow[];
  close(): void;
}

const HOUR = 3600_000;

/**
 * Usage metering per function and hour, kept in SQLite. Events are summed in memory and written
 * once a second, so metering costs the request path a map update, not a database write. Usage
 * outlives the function: deleting it does not erase what it consumed.
 */
export function createUsageMeter(options: { path: string; flushMs?: number }): UsageMeter {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE IF NOT EXISTS usage (
    function TEXT NOT NULL, hour INTEGER NOT NULL, invocations INTEGER NOT NULL, billed_mb_ms INTEGER NOT NULL,
    cold_starts INTEGER NOT NULL, egress_bytes INTEGER NOT NULL, PRIMARY KEY (function, hour))`);
  const upsert = db.prepare(`INSERT INTO usage VALUES (@function, @hour, @invocations, @mbMs, @cold, @egress)
    ON CONFLICT (function, hour) DO UPDATE SET invocations = invocations + @invocations, billed_mb_ms = billed_mb_ms + @mbMs,
      cold_starts = cold_starts + @cold, egress_bytes = egress_bytes + @egress`);
  // Integer MB·ms keeps the sums exact; GB-seconds are derived when read (1 GB = 1024 MB).
  type Row = { function: string; hour: number; invocations: number; mbMs: number; cold: number; egress: number };
  // Each function's row of the current hour, found by name alone (no key string per event); rows
  // of an hour that ended wait in `done` for the next flush.
  let pending = new Map<string, Row>();
  let done: Row[] = [];
  const flush = db.transaction(() => {
    const rows = pending;
    const ended = done;
    pending = new Map();
    done = [];
    for (const row of ended) upsert.run(row);
    for (const row of rows.values()) upsert.run(row);
  });
  const dirty = () => pending.size > 0 || done.length > 0;
  const timer = setInterval(() => dirty() && flush(), options.flushMs ?? 1000);
  timer.unref();

  return {
    record(e) {
      const hour = e.time - (e.time % HOUR);
      let row = pending.get(e.function);
      if (!row || row.hour !== hour) {
        if (row) done.push(row);
        row = { function: e.function, hour, invocations: 0, mbMs: 0, cold: 0, egress: 0 };
        pending.set(e.function, row);
      }
      row.invocations++;
      row.mbMs += e.memoryMb * Math.max(1, Math.ceil(e.durationMs));
      if (e.cold) row.cold++;
      row.egress += e.egressBytes ?? 0;
    },
    query(q) {
      if (dirty()) flush();
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.function) {
        where.push('function = ?');
        args.push(q.function);
      }
      if (q.since !== undefined) {
        where.push('hour >= ?');
        args.push(Math.floor(q.since / HOUR) * HOUR);
      }
      if (q.until !== undefined) {
        where.push('hour < ?');
        args.push(q.until);
      }
      const sql = `SELECT * FROM usage ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY hour, function`;
      return (db.prepare(sql).all(...args) as Record<string, number | string>[]).map((r) => ({
        function: r.function as string,
        hour: new Date(r.hour as number).toISOString(),
        invocations: r.invocations as number,
        gbSeconds: (r.billed_mb_ms as number) / 1024 / 1000,
        coldStarts: r.cold_starts as number,
        egressBytes: r.egress_bytes as number,
      }));
    },
    close() {
      clearInterval(timer);
      if (dirty()) flush();
      db.close();
    },
  };
}

/** Usage rows as CSV, header first. */
export function usageCsv(rows: UsageRow[]): string {
  const lines = ['function,hour,invocations,gb_seconds,cold_starts,egress_bytes'];
  for (const r of rows)
    lines.push([r.function, r.hour, r.invocations, r.gbSeconds.toFixed(6), r.coldStarts, r.egressBytes].join(','));
  return `${lines.join('\n')}\n`;
}
