import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type Clock, createManualClock } from '../core/clock.js';
import { hasCode } from '../core/errors.js';
import type { Queue } from './types.js';

/**
 * The behaviour every Queue implementation must show, as a node:test suite. `makeQueue` gets a
 * manual clock (time only moves when the test says so) and returns a fresh, empty queue; queue
 * names are unique per test so a backend on a shared server can run it too.
 */
export function runQueueConformance(name: string, makeQueue: (clock: Clock) => Queue | Promise<Queue>): void {
  let clock: ReturnType<typeof createManualClock>;
  let queue: Queue;
  let n = 0;
  let q: string;
  const conflict = (err: unknown) => hasCode(err, 'NIMBUS_ERR_CONFLICT');

  describe(`Queue conformance: ${name}`, () => {
    beforeEach(async () => {
      clock = createManualClock(1_000_000);
      queue = await makeQueue(clock);
      q = `q${process.pid}-${++n}`;
    });
    afterEach(() => queue.close());

    it('stores a job with its data and body, queued and due now', async () => {
      const job = await queue.enqueue({ queue: q, data: { method: 'POST' }, body: Buffer.from('hi') });
      assert.equal(job.state, 'queued');
      assert.equal(job.attempts, 0);
      const got = await queue.get(job.id);
      assert.deepEqual(got?.data, { method: 'POST' });
      assert.equal(got?.body.toString(), 'hi');
      assert.equal(got?.createdAt, 1_000_000);
      assert.deepEqual(await queue.readyQueues(), [q]);
      assert.equal(await queue.get('missing'), undefined);
    });

    it('is idempotent on a caller-chosen id', async () => {
      const a = await queue.enqueue({ queue: q, id: 'same-id', data: { n: 1 } });
      const b = await queue.enqueue({ queue: q, id: 'same-id', data: { n: 2 } });
      assert.equal(a.id, b.id);
      assert.deepEqual(b.data, { n: 1 });
      assert.equal((await queue.counts(q)).queued, 1);
    });

    it('leases oldest first, at most max, and not the same job twice while leased', async () => {
      for (let i = 0; i < 5; i++) await queue.enqueue({ queue: q, id: `${q}-${i}`, data: { i } });
      const first = await queue.lease(q, 3, 10_000);
      assert.deepEqual(
        first.map((j) => j.data.i),
        [0, 1, 2],
      );
      assert.ok(first.every((j) => j.state === 'running' && j.attempts === 1 && j.token));
      const second = await queue.lease(q, 10, 10_000);
      assert.deepEqual(
        second.map((j) => j.data.i),
        [3, 4],
      );
      assert.deepEqual(await queue.lease(q, 10, 10_000), []);
      assert.deepEqual(await queue.lease(`${q}-other`, 10, 10_000), []);
    });

    it('leases an expired lease again, and the stale token can no longer settle it', async () => {
      const { id } = await queue.enqueue({ queue: q, data: {} });
      const [a] = await queue.lease(q, 1, 5000);
      assert.equal(await queue.nextWakeAt(), 1_000_000 + 5000);
      clock.advance(4999);
      assert.deepEqual(await queue.lease(q, 1, 5000), []);
      clock.advance(1);
      assert.deepEqual(await queue.readyQueues(), [q]);
      const [b] = await queue.lease(q, 1, 5000);
      assert.equal(b?.id, id);
      assert.equal(b?.attempts, 2);
      await assert.rejects(queue.complete(id, a!.token, 'succeeded'), conflict);
      await queue.complete(id, b!.token, 'succeeded', { result: { status: 200 } });
      const done = await queue.get(id);
      assert.equal(done?.state, 'succeeded');
      assert.deepEqual(done?.result, { status: 200 });
      assert.equal(done?.finishedAt, clock.now());
    });

    it('a settled job cannot be settled again', async () => {
      await queue.enqueue({ queue: q, data: {} });
      const [job] = await queue.lease(q, 1, 5000);
      await queue.complete(job!.id, job!.token, 'failed', { error: 'bad request' });
      assert.equal((await queue.get(job!.id))?.lastError, 'bad request');
      await assert.rejects(queue.retry(job!.id, job!.token, clock.now()), conflict);
      await assert.rejects(queue.deadLetter(job!.id, job!.token), conflict);
    });

    it('nextWakeAt(after) skips work already due then: a backlog does not hide a later due time', async () => {
      const other = `${q}-other`;
      await queue.enqueue({ queue: q, data: {} }); // due now: its queue is at its limit, say
      await queue.enqueue({ queue: other, data: {}, delayMs: 50 });
      assert.equal(await queue.nextWakeAt(), 1_000_000);
      assert.equal(await queue.nextWakeAt(1_000_000), 1_000_050);
      const [leased] = await queue.lease(q, 1, 5000);
      assert.equal(await queue.nextWakeAt(1_000_050), 1_005_000, 'the lease expiry');
      assert.equal(await queue.nextWakeAt(1_005_000), undefined);
      await queue.complete(leased!.id, leased!.token, 'succeeded');
    });

    it('a retried job is due only at its time, keeping its attempt count and error', async () => {
      await queue.enqueue({ queue: q, data: {}, delayMs: 100 });
      assert.deepEqual(await queue.readyQueues(), []);
      assert.equal(await queue.nextWakeAt(), 1_000_100);
      clock.advance(100);
      const [job] = await queue.lease(q, 1, 5000);
      await queue.retry(job!.id, job!.token, clock.now() + 2000, { error: 'HTTP 500' });
      const waiting = await queue.get(job!.id);
      assert.equal(waiting?.state, 'queued');
      assert.equal(waiting?.lastError, 'HTTP 500');
      assert.equal(waiting?.availableAt, clock.now() + 2000);
      clock.advance(1999);
      assert.deepEqual(await queue.lease(q, 1, 5000), []);
      clock.advance(1);
      const [again] = await queue.lease(q, 1, 5000);
      assert.equal(again?.attempts, 2);
    });

    it('dead-letters, lists the dead, and redrives all or one with attempts reset', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await queue.enqueue({ queue: q, data: { i } })).id);
      for (const job of await queue.lease(q, 3, 5000)) await queue.deadLetter(job.id, job.token, { error: 'gave up' });
      const dead = await queue.list({ queue: q, state: 'dead' });
      assert.deepEqual(dead.map((j) => j.id).sort(), [...ids].sort());
      assert.deepEqual(await queue.counts(q), { queued: 0, running: 0, succeeded: 0, failed: 0, dead: 3 });
      clock.advance(1000);
      assert.deepEqual(await queue.redrive(q, [ids[1]!, 'unknown']), [ids[1]]);
      const back = await queue.get(ids[1]!);
      assert.equal(back?.state, 'queued');
      assert.equal(back?.attempts, 0);
      assert.equal(back?.enqueuedAt, clock.now());
      assert.equal(back?.lastError, 'gave up', 'the last error stays visible');
      assert.deepEqual((await queue.redrive(q)).sort(), [ids[0], ids[2]].sort());
      assert.equal((await queue.counts(q)).queued, 3);
      assert.deepEqual(await queue.redrive(`${q}-other`), []);
    });

    it('prunes final jobs past their retention, dead ones on their own clock', async () => {
      for (let i = 0; i < 3; i++) await queue.enqueue({ queue: q, id: `${q}-${i}`, data: {} });
      const [a, b, c] = await queue.lease(q, 3, 5000);
      await queue.complete(a!.id, a!.token, 'succeeded');
      await queue.deadLetter(b!.id, b!.token);
      clock.advance(10_000);
      assert.equal(await queue.prune(clock.now() - 5000, clock.now() - 60_000), 1);
      assert.equal(await queue.get(a!.id), undefined);
      assert.equal((await queue.get(b!.id))?.state, 'dead');
      assert.equal((await queue.get(c!.id))?.state, 'running', 'unsettled jobs are never pruned');
      assert.equal(await queue.prune(clock.now(), clock.now()), 1);
    });

    it('reports the backlog of a queue: ready, delayed (retries) and running', async () => {
      assert.deepEqual(await queue.depth(q), { ready: 0, delayed: 0, running: 0 });
      for (let i = 0; i < 4; i++) await queue.enqueue({ queue: q, id: `${q}-${i}`, data: {} });
      await queue.enqueue({ queue: `${q}-other`, data: {} });
      const [a, b] = await queue.lease(q, 2, 5000);
      await queue.retry(a!.id, a!.token, clock.now() + 1000);
      assert.deepEqual(await queue.depth(q), { ready: 2, delayed: 1, running: 1 });
      await queue.complete(b!.id, b!.token, 'succeeded');
      clock.advance(1000);
      assert.deepEqual(await queue.depth(q), { ready: 3, delayed: 0, running: 0 });
    });

    it('lists newest first, filtered by queue and state, up to a limit', async () => {
      for (let i = 0; i < 4; i++) {
        await queue.enqueue({ queue: q, id: `${q}-${i}`, data: { i } });
        clock.advance(1);
      }
      await queue.enqueue({ queue: `${q}-b`, data: {} });
      const listed = await queue.list({ queue: q, limit: 3 });
      assert.deepEqual(
        listed.map((j) => j.data.i),
        [3, 2, 1],
      );
      assert.equal((await queue.list({ queue: q, state: 'running' })).length, 0);
      assert.equal((await queue.counts()).queued, 5);
    });
  });
}
