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
    insert: db.prepare(
      'INSERT INTO jobs (id, queue, state, data, body, attempts, created_at, enqueued_at, updated_at, available_at, seq) ' +
        "VALUES (@id, @queue, 'queued', @data, @body, 0, @now, @now, @now, @available, @seq)",
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
    wake: db.prepare<[], { at: number | null }>(
      "SELECT MIN(available_at) AS at FROM jobs WHERE state IN ('queued', 'running')",
    ),
    settle: db.prepare(
      'UPDATE jobs SET state = @state, lease_token = NULL, available_at = @available, updated_at = @now, ' +
        'finished_at = @finished, last_error = COALESCE(@error, last_error), result = COALESCE(@result, result) ' +
        "WHERE id = @id AND state = 'running' AND lease_token = @token",
    ),
    counts: db.prepare<[string | null, string | null], { state: JobState; n: number }>(
      'SELECT state, COUNT(*) AS n FROM jobs WHERE (? IS NULL OR queue = ?) GROUP BY state',
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

  const enqueue = db.transaction((input: EnqueueInput): Row => {
    const id = input.id ?? randomUUID();
    const existing = stmt.get.get(id);
    if (existing) return existing;
    const now = clock.now();
    stmt.insert.run({
      id,
      queue: input.queue,
      data: JSON.stringify(input.data),
      body: input.body && input.body.length > 0 ? Buffer.from(input.body) : null,
      now,
      available: now + Math.max(0, input.delayMs ?? 0),
      seq: ++seq,
    });
    return stmt.get.get(id)!;
  });

  const lease = db.transaction((queue: string, max: number, visibilityMs: number): LeasedJob[] => {
    const now = clock.now();
    const ids = stmt.expired.all(queue, now, max).map((r) => r.id);
    if (ids.length < max) for (const r of stmt.due.all(queue, now, max - ids.length)) ids.push(r.id);
    return ids.map((id) => {
      const token = randomBytes(8).toString('hex');
      return { ...toJob(stmt.take.get(token, now + visibilityMs, now, now, id)!), token };
    });
  });

  const settle = (
    id: string,
    token: string,
    state: JobState,
    available: number,
    outcome: Outcome | undefined,
    final: boolean,
  ) => {
    checkOpen();
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

  const redrive = db.transaction((queue: string, ids: string[] | undefined): string[] => {
    const now = clock.now();
    const targets = ids ?? stmt.deadOf.all(queue).map((r) => r.id);
    return targets.filter((id) => stmt.redrive.run(now, now, now, id, queue).changes > 0);
  });

  return {
    async enqueue(input) {
      checkOpen();
      return toJob(enqueue.immediate(input));
    },
    async lease(queue, max, visibilityMs) {
      checkOpen();
      if (max <= 0) return [];
      return lease.immediate(queue, max, visibilityMs);
    },
    async readyQueues() {
      checkOpen();
      return stmt.ready.all(clock.now()).map((r) => r.queue);
    },
    async nextWakeAt() {
      checkOpen();
      return stmt.wake.get()?.at ?? undefined;
    },
    async complete(id, token, state, outcome) {
      settle(id, token, state, clock.now(), outcome, true);
    },
    async retry(id, token, at, outcome) {
      settle(id, token, 'queued', at, outcome, false);
    },
    async deadLetter(id, token, outcome) {
      settle(id, token, 'dead', clock.now(), outcome, true);
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
    async redrive(queue, ids) {
      checkOpen();
      return redrive.immediate(queue, ids);
    },
    async prune(before, deadBefore) {
      checkOpen();
      return stmt.prune.run(before, deadBefore).changes;
    },
    async close() {
      if (closed) return;
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
