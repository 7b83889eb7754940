import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type Clock, systemClock } from '../core/clock.js';
import { NimbusError } from '../core/errors.js';
import type { EnqueueInput, Job, JobState, LeasedJob, ListOptions, Outcome, Queue } from './types.js';

export interface SqliteQueueOptions {
  /** Database file (its directory is created), or `:memory:` for tests. */
  path: string;
  clock?: Clock;
  /**
   * `normal` (default): a committed job survives a crash of the process (kill -9), not
   * necessarily a power cut. `full`: fsync on every commit, so it survives both, slower.
   */
  synchronous?: 'normal' | 'full';
}

interface Row {
  id: string;
  queue: string;
  state: JobState;
  data: string;
  body: Buffer | null;
  attempts: number;
  created_at: number;
  enqueued_at: number;
  updated_at: number;
  available_at: number;
  lease_token: string | null;
  started_at: number | null;
  finished_at: number | null;
  last_error: string | null;
  result: string | null;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    body BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    lease_token TEXT,
    started_at INTEGER,
    finished_at INTEGER,
    last_error TEXT,
    result TEXT,
    seq INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS jobs_due ON jobs (queue, state, available_at, seq);
  CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, available_at);
  CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (state, finished_at);
  CREATE INDEX IF NOT EXISTS jobs_list ON jobs (queue, created_at);
`;

const COLUMNS =
  'id, queue, state, data, body, attempts, created_at, enqueued_at, updated_at, available_at, lease_token, started_at, finished_at, last_error, result';

/**
 * The embedded Queue: one table in its own SQLite file (WAL), so queue traffic never contends
 * with the registry's writes. A single process owns the file: jobs that were `running` when it
 * was last closed or killed belong to workers that no longer exist, so opening the file puts
 * them back to `queued` at once (their attempt still counts) instead of waiting for their leases
 * to expire.
 */
export function createSqliteQueue(options: SqliteQueueOptions): Queue {
  const clock = options.clock ?? systemClock;
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  db.prepare("UPDATE jobs SET state = 'queued', lease_token = NULL, available_at = ? WHERE state = 'running'").run(
    clock.now(),
  );
  let seq = (db.prepare('SELECT MAX(seq) AS s FROM jobs').get() as { s: number | null }).s ?? 0;

  const stmt = {
    get: db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM jobs WHERE id = ?`),
    // One statement: a new id is inserted and returned; an existing one returns nothing (then `get`).
    insert: db.prepare<[Record<string, unknown>], Row>(
      'INSERT INTO jobs (id, queue, state, data, body, attempts, created_at, enqueued_at, updated_at, available_at, seq) ' +
        "VALUES (@id, @queue, 'queued', @data, @body, 0, @now, @now, @now, @available, @seq) " +
        `ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
    ),
    expired: db.prepare<[string, number, number], { id: string }>(
      "SELECT id FROM jobs WHERE queue = ? AND state = 'running' AND available_at <= ? LIMIT ?",
    ),
    due: db.prepare<[string, number, number], { id: string }>(
      "SELECT id FROM jobs WHERE queue = ? AND state = 'queued' AND available_at <= ? ORDER BY available_at, seq LIMIT ?",
    ),
    take: db.prepare<[string, number, number, number, string], Row>(
      "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = ?, available_at = ?, " +
        `started_at = ?, updated_at = ? WHERE id = ? RETURNING ${COLUMNS}`,
    ),
    ready: db.prepare<[number], { queue: string }>(
      "SELECT DISTINCT queue FROM jobs WHERE state IN ('queued', 'running') AND available_at <= ?",
    ),
    // Two MINs, each answered from the jobs_state index; MIN over `state IN (…)` scans every row.
    wake: db.prepare<[number, number], { at: number | null }>(
      "SELECT MIN(at) AS at FROM (SELECT MIN(available_at) AS at FROM jobs WHERE state = 'queued' AND available_at > ? " +
        "UNION ALL SELECT MIN(available_at) FROM jobs WHERE state = 'running' AND available_at > ?)",
    ),
    settle: db.prepare(
      'UPDATE jobs SET state = @state, lease_token = NULL, available_at = @available, updated_at = @now, ' +
        'finished_at = @finished, last_error = COALESCE(@error, last_error), result = COALESCE(@result, result) ' +
        "WHERE id = @id AND state = 'running' AND lease_token = @token",
    ),
    counts: db.prepare<[string | null, string | null], { state: JobState; n: number }>(
      'SELECT state, COUNT(*) AS n FROM jobs WHERE (? IS NULL OR queue = ?) GROUP BY state',
    ),
    depth: db.prepare<[{ now: number; queue: string }], { ready: number; delayed: number; running: number }>(
      "SELECT COALESCE(SUM(state = 'queued' AND available_at <= @now), 0) AS ready, " +
        "COALESCE(SUM(state = 'queued' AND available_at > @now), 0) AS delayed, " +
        "COALESCE(SUM(state = 'running'), 0) AS running FROM jobs WHERE queue = @queue AND state IN ('queued', 'running')",
    ),
    deadOf: db.prepare<[string], { id: string }>("SELECT id FROM jobs WHERE queue = ? AND state = 'dead'"),
    redrive: db.prepare<[number, number, number, string, string]>(
      "UPDATE jobs SET state = 'queued', attempts = 0, enqueued_at = ?, available_at = ?, updated_at = ?, " +
        "finished_at = NULL, lease_token = NULL WHERE id = ? AND queue = ? AND state = 'dead'",
    ),
    prune: db.prepare<[number, number]>(
      "DELETE FROM jobs WHERE (state IN ('succeeded', 'failed') AND finished_at < ?) OR (state = 'dead' AND finished_at < ?)",
    ),
  };
  let closed = false;
  const checkOpen = () => {
    if (closed) throw new NimbusError('NIMBUS_ERR_INTERNAL', 'Internal error: the queue is closed');
  };

  const enqueueRow = (input: EnqueueInput): Row => {
    const id = input.id ?? randomUUID();
    const now = clock.now();
    const inserted = stmt.insert.get({
      id,
      queue: input.queue,
      data: JSON.stringify(input.data),
      body: input.body && input.body.length > 0 ? Buffer.from(input.body) : null,
      now,
      available: now + Math.max(0, input.delayMs ?? 0),
      seq: seq + 1,
    });
    if (!inserted) return stmt.get.get(id)!;
    seq++;
    return inserted;
  };

  // Lease tokens only need to differ between two leases of one job: a per-open prefix and a counter.
  const tokenPrefix = randomBytes(6).toString('hex');
  let tokens = 0;
  const leaseRows = (queue: string, max: number, visibilityMs: number): LeasedJob[] => {
    const now = clock.now();
    const ids = stmt.expired.all(queue, now, max).map((r) => r.id);
    if (ids.length < max) for (const r of stmt.due.all(queue, now, max - ids.length)) ids.push(r.id);
    return ids.map((id) => {
      const token = `${tokenPrefix}.${(++tokens).toString(36)}`;
      return { ...toJob(stmt.take.get(token, now + visibilityMs, now, now, id)!), token };
    });
  };

  const settleRow = (
    id: string,
    token: string,
    state: JobState,
    available: number,
    outcome: Outcome | undefined,
    final: boolean,
  ): void => {
    const now = clock.now();
    const changed = stmt.settle.run({
      id,
      token,
      state,
      available,
      now,
      finished: final ? now : null,
      error: outcome?.error ?? null,
      result: outcome?.result ? JSON.stringify(outcome.result) : null,
    }).changes;
    if (changed === 0)
      throw new NimbusError('NIMBUS_ERR_CONFLICT', `Job ${id} is not leased with this token (its lease expired)`, {
        details: { id },
      });
  };

  const redriveRows = (queue: string, ids: string[] | undefined): string[] => {
    const now = clock.now();
    const targets = ids ?? stmt.deadOf.all(queue).map((r) => r.id);
    return targets.filter((id) => stmt.redrive.run(now, now, now, id, queue).changes > 0);
  };

  /*
   * Group commit: every write (enqueue, lease, settle, redrive) waits for the next turn of the
   * event loop and runs with the others of that turn in ONE transaction; its promise settles only
   * after that transaction committed, so "resolved" still means "on disk" (as durable as each
   * commit was alone). One commit writes each touched page of the table and its four indexes once
   * for the whole group instead of once per job — the per-job transactions were the async path's
   * bottleneck (BENCHMARKS.md). An expected refusal of one write (a settle whose lease was lost)
   * fails only that write; an SQLite error (disk full…) rolls back and fails the whole group.
   */
  type Pending = { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };
  let pending: Pending[] = [];
  let scheduled = false;
  const flushGroup = db.transaction((ops: Pending[]) =>
    ops.map((op) => {
      try {
        return { ok: true as const, value: op.run() };
      } catch (err) {
        if (err instanceof NimbusError) return { ok: false as const, error: err };
        throw err;
      }
    }),
  );
  const flush = () => {
    scheduled = false;
    const ops = pending;
    pending = [];
    if (ops.length === 0) return;
    let results: ReturnType<typeof flushGroup>;
    try {
      if (closed) throw new NimbusError('NIMBUS_ERR_INTERNAL', 'Internal error: the queue is closed');
      results = flushGroup.immediate(ops);
    } catch (err) {
      for (const op of ops) op.reject(err);
      return;
    }
    ops.forEach((op, i) => {
      const r = results[i]!;
      if (r.ok) op.resolve(r.value);
      else op.reject(r.error);
    });
  };
  const write = <T>(run: () => T): Promise<T> => {
    checkOpen();
    return new Promise<T>((resolve, reject) => {
      pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  };

  return {
    async enqueue(input) {
      return toJob(await write(() => enqueueRow(input)));
    },
    async lease(queue, max, visibilityMs) {
      checkOpen();
      if (max <= 0) return [];
      return write(() => leaseRows(queue, max, visibilityMs));
    },
    async readyQueues() {
      checkOpen();
      return stmt.ready.all(clock.now()).map((r) => r.queue);
    },
    async nextWakeAt(after = Number.NEGATIVE_INFINITY) {
      checkOpen();
      return stmt.wake.get(after, after)?.at ?? undefined;
    },
    complete(id, token, state, outcome) {
      return write(() => settleRow(id, token, state, clock.now(), outcome, true));
    },
    retry(id, token, at, outcome) {
      return write(() => settleRow(id, token, 'queued', at, outcome, false));
    },
    deadLetter(id, token, outcome) {
      return write(() => settleRow(id, token, 'dead', clock.now(), outcome, true));
    },
    async get(id) {
      checkOpen();
      const row = stmt.get.get(id);
      return row && toJob(row);
    },
    async list(opts: ListOptions = {}) {
      checkOpen();
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (opts.queue !== undefined) {
        where.push('queue = ?');
        args.push(opts.queue);
      }
      if (opts.state !== undefined) {
        where.push('state = ?');
        args.push(opts.state);
      }
      args.push(opts.limit ?? 100);
      const sql = `SELECT ${COLUMNS} FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, seq DESC LIMIT ?`;
      return (db.prepare(sql).all(...args) as Row[]).map(toJob);
    },
    async counts(queue) {
      checkOpen();
      const out: Record<JobState, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 0 };
      for (const r of stmt.counts.all(queue ?? null, queue ?? null)) out[r.state] = r.n;
      return out;
    },
    async depth(queue) {
      checkOpen();
      return { ...stmt.depth.get({ now: clock.now(), queue })! };
    },
    redrive(queue, ids) {
      return write(() => redriveRows(queue, ids));
    },
    async prune(before, deadBefore) {
      checkOpen();
      return stmt.prune.run(before, deadBefore).changes;
    },
    async close() {
      if (closed) return;
      flush(); // writes already accepted commit before the file closes
      closed = true;
      db.close();
    },
  };
}

function toJob(row: Row): Job {
  const job: Job = {
    id: row.id,
    queue: row.queue,
    state: row.state,
    data: JSON.parse(row.data),
    body: row.body ?? Buffer.alloc(0),
    attempts: row.attempts,
    createdAt: row.created_at,
    enqueuedAt: row.enqueued_at,
    updatedAt: row.updated_at,
    availableAt: row.available_at,
  };
  if (row.started_at !== null) job.startedAt = row.started_at;
  if (row.finished_at !== null) job.finishedAt = row.finished_at;
  if (row.last_error !== null) job.lastError = row.last_error;
  if (row.result !== null) job.result = JSON.parse(row.result);
  return job;
}
