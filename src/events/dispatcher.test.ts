import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { createSqliteQueue } from '../queue/sqlite-queue.js';
import type { LeasedJob } from '../queue/types.js';
import { createDispatcher } from './dispatcher.js';

/** Resolves with what `started` yields first, or rejects after `ms` of real time. */
function within<T>(ms: number, started: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([started, late]).finally(() => clearTimeout(timer));
}

describe('async dispatcher', () => {
  it('a job that came due while its queue was leasing runs at once, not at the next poll', async () => {
    const clock = createManualClock(1000);
    const sqlite = createSqliteQueue({ path: ':memory:', clock });
    // Every lease takes 100 ms of the clock to commit (a loaded disk): the job due at +50 comes
    // due after the lease that found it not yet due, and before the dispatcher sets its timer.
    const queue = {
      ...sqlite,
      async lease(name: string, max: number, visibilityMs: number) {
        const jobs = await sqlite.lease(name, max, visibilityMs);
        clock.advance(100);
        return jobs;
      },
    };
    const first = await queue.enqueue({ queue: 'f', data: { n: 1 } });
    const second = await queue.enqueue({ queue: 'f', data: { n: 2 }, delayMs: 50 });
    const started: string[] = [];
    let secondStarted = () => {};
    const secondRuns = new Promise<void>((resolve) => {
      secondStarted = resolve;
    });
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const dispatcher = createDispatcher({
      queue,
      clock,
      limit: () => 2,
      visibilityMs: () => 60_000,
      async run(job: LeasedJob) {
        started.push(job.id);
        if (job.id === second.id) secondStarted();
        await held; // the first job keeps running: no finishing job pumps the queue
        await sqlite.complete(job.id, job.token, 'succeeded');
      },
    });
    dispatcher.start();
    await within(5000, secondRuns, 'the second job starting (not after the 30 s poll)');
    assert.deepEqual(started, [first.id, second.id]);
    release();
    await dispatcher.close();
    await sqlite.close();
  });

  it("a queue at its limit with a backlog does not hide another queue's retry", async () => {
    const clock = createManualClock(1000);
    const queue = createSqliteQueue({ path: ':memory:', clock });
    await queue.enqueue({ queue: 'busy', data: {} });
    await queue.enqueue({ queue: 'busy', data: {} }); // due, but 'busy' runs one at a time
    const retry = await queue.enqueue({ queue: 'other', data: {}, delayMs: 50 });
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let otherStarted = false;
    const dispatcher = createDispatcher({
      queue,
      clock,
      limit: (name) => (name === 'busy' ? 1 : 2),
      visibilityMs: () => 60_000,
      async run(job: LeasedJob) {
        if (job.id === retry.id) otherStarted = true;
        else await held;
        await queue.complete(job.id, job.token, 'succeeded');
      },
    });
    dispatcher.start();
    // Step the clock 50 ms at a time, 2 s in all: far less than the 30 s poll.
    for (let i = 0; i < 40 && !otherStarted; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      clock.advance(50);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(otherStarted, true, "the other queue's job ran at its due time");
    release();
    await dispatcher.close();
    await queue.close();
  });
});
