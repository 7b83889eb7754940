import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { createSqliteQueue } from '../queue/sqlite-queue.js';
import type { Queue } from '../queue/types.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { type AsyncInvocationsNode, createAsyncInvocations } from './async-invocations.js';
import type { InvocationResponse } from './invoker.js';
import { createQueueDemand, type QueueDemand } from './queue-demand.js';
import type { AsyncConfig } from './types.js';

const request = { method: 'POST', path: '/', headers: {}, body: Buffer.from('x') };

describe('async backlog as autoscaler demand', () => {
  let queue: Queue;
  let store: Store;
  let events: AsyncInvocationsNode;
  let demand: QueueDemand;
  // The function side: every invocation waits until the test lets it go.
  let release: () => void;
  let gate: Promise<void>;
  let started = 0;

  beforeEach(() => {
    const clock = createManualClock(1_000_000);
    queue = createSqliteQueue({ path: ':memory:', clock });
    store = createSqliteStore({ path: ':memory:' });
    gate = new Promise((r) => {
      release = r;
    });
    started = 0;
    events = createAsyncInvocations({
      queue,
      clock,
      invoker: {
        async invoke(): Promise<InvocationResponse> {
          started++;
          await gate;
          return { status: 200, headers: {}, body: Buffer.alloc(0), truncated: false, cold: false, durationMs: 1 };
        },
      },
      configs: store.bucket<AsyncConfig>('async-config'),
      exists: (name) => name === 'work' || name === 'idle',
      timeoutMs: () => 30_000,
    });
    demand = createQueueDemand({ invocations: events, functions: () => ['work', 'idle'], intervalMs: 60_000 });
  });
  afterEach(async () => {
    demand.stop();
    release();
    await events.close(0);
    await queue.close();
    await store.close();
  });

  it('asks for the due backlog, up to the function’s async concurrency, before the dispatcher runs it', async () => {
    for (let i = 0; i < 4; i++) await events.enqueue('work', request);
    await demand.poll();
    assert.equal(demand.demand('work'), 4);
    for (let i = 0; i < 21; i++) await events.enqueue('work', request);
    await demand.poll();
    assert.equal(demand.demand('work'), 10, 'capped by the default async concurrency (10)');
    assert.equal(demand.demand('idle'), 0);
    assert.equal(demand.demand('unknown'), 0);
  });

  it('asks for nothing more once the running invocations fill the async concurrency', async () => {
    for (let i = 0; i < 25; i++) await events.enqueue('work', request);
    await events.start();
    while (started < 10) await new Promise((r) => setImmediate(r));
    await demand.poll();
    // Ten are running (in flight on instances, which the autoscaler already counts); the other 15 cannot run yet.
    assert.equal(demand.demand('work'), 0);
  });
});
