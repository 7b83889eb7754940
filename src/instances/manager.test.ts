import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryRuntime } from '../../test/support/memory-runtime.js';
import { createManualClock } from '../core/clock.js';
import { hasCode, NimbusError } from '../core/errors.js';
import { createInstanceManager } from './manager.js';
import { instancesToReap, instancesToStart, restartBackoffMs } from './scaling.js';
import type { RevisionPlan } from './types.js';

const settle = () => new Promise((r) => setImmediate(r));

function plan(overrides: Partial<RevisionPlan['scale']> & { concurrency?: number } = {}): RevisionPlan {
  const { concurrency = 1, ...scale } = overrides;
  return {
    key: 'fn/r1',
    function: 'fn',
    revision: 'r1',
    concurrency,
    scale: { min: 0, max: 10, idleTimeout: 60, ...scale },
    spec: {
      function: 'fn',
      revision: 'r1',
      kind: 'node',
      artifactDir: '/nowhere',
      env: {},
      memoryMb: 128,
      timeoutMs: 1000,
    },
  };
}

/** A runtime whose starts complete only when the test says so. */
function gatedRuntime() {
  const gates: { resolve(): void; reject(e: Error): void }[] = [];
  const runtime = createMemoryRuntime({
    startGate: () => new Promise<void>((resolve, reject) => gates.push({ resolve, reject })),
  });
  return { runtime, gates };
}

describe('scaling decisions', () => {
  it('starts enough instances for in-flight plus held requests, within min and max', () => {
    assert.equal(
      instancesToStart({ ready: 0, starting: 0, inFlight: 0, waiting: 1, concurrency: 10, min: 0, max: 5 }),
      1,
    );
    assert.equal(
      instancesToStart({ ready: 1, starting: 0, inFlight: 10, waiting: 25, concurrency: 10, min: 0, max: 3 }),
      2,
    );
    assert.equal(
      instancesToStart({ ready: 0, starting: 0, inFlight: 0, waiting: 0, concurrency: 10, min: 2, max: 5 }),
      2,
    );
    assert.equal(
      instancesToStart({ ready: 2, starting: 1, inFlight: 5, waiting: 0, concurrency: 10, min: 0, max: 5 }),
      0,
    );
  });
  it('reaps the longest-idle instances first and never below min', () => {
    const c = [
      { id: 'a', inFlight: 0, lastUsedAt: 0 },
      { id: 'b', inFlight: 0, lastUsedAt: 500 },
      { id: 'c', inFlight: 1, lastUsedAt: 0 },
    ];
    assert.deepEqual(instancesToReap(c, 3, 1, 1000, 2000), ['a', 'b']);
    assert.deepEqual(instancesToReap(c, 3, 2, 1000, 2000), ['a']);
    assert.deepEqual(instancesToReap(c, 3, 0, 1000, 1200), ['a']);
  });
  it('backs off exponentially up to a minute', () => {
    assert.deepEqual([0, 1, 2, 3, 10].map(restartBackoffMs), [0, 1000, 2000, 4000, 60_000]);
  });
});

describe('instance manager', () => {
  it('holds a request that arrives at zero until an instance is ready, then serves it', async () => {
    const clock = createManualClock();
    const { runtime, gates } = gatedRuntime();
    const manager = createInstanceManager({ runtime, clock });
    let leased = false;
    const pending = manager.acquire(plan()).then((l) => {
      leased = true;
      return l;
    });
    await settle();
    assert.equal(runtime.started(), 1);
    assert.equal(leased, false);
    gates[0]!.resolve();
    const lease = await pending;
    assert.equal(lease.cold, true);
    lease.release();
    const warm = await manager.acquire(plan());
    assert.equal(warm.cold, false);
    assert.equal(runtime.started(), 1);
    warm.release();
    await manager.close();
  });

  it('starts another instance when every slot is busy, up to scale.max, and serves held requests in order', async () => {
    const clock = createManualClock();
    const { runtime, gates } = gatedRuntime();
    const manager = createInstanceManager({ runtime, clock });
    const p = plan({ concurrency: 2, max: 2 });
    const order: number[] = [];
    const all = [0, 1, 2, 3, 4, 5].map((i) =>
      manager.acquire(p).then((l) => {
        order.push(i);
        return l;
      }),
    );
    await settle();
    assert.equal(runtime.started(), 2, 'ceil(6 / 2) = 3 wanted, but max is 2');
    for (const g of gates) g.resolve();
    await settle();
    assert.deepEqual(order, [0, 1, 2, 3]);
    const first = await all[0]!;
    first.release();
    await settle();
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.ok(manager.instances('fn').every((i) => i.inFlight <= 2));
    (await all[1]!).release();
    await settle();
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    for (const lease of await Promise.all(all.slice(2))) lease.release();
    await manager.close();
  });

  it('scales to zero after the idle timeout, but never stops an instance with a request in flight', async () => {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock });
    const p = plan({ concurrency: 1, idleTimeout: 30 });
    const [a, b] = await Promise.all([manager.acquire(p), manager.acquire(p)]);
    a!.release();
    clock.advance(31_000);
    await settle();
    assert.equal(manager.instances('fn').length, 1, 'the idle one stopped, the busy one stayed');
    clock.advance(120_000);
    await settle();
    assert.equal(manager.instances('fn').length, 1, 'still busy: never stopped');
    b!.release();
    clock.advance(31_000);
    await settle();
    assert.equal(manager.instances('fn').length, 0);
    await manager.close();
  });

  it('keeps scale.min warm and replaces a crashed instance', async () => {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 0 });
    const p = plan({ min: 2, idleTimeout: 1 });
    manager.ensureMin(p);
    await settle();
    assert.equal(manager.instances('fn').filter((i) => i.state === 'ready').length, 2);
    clock.advance(60_000);
    await settle();
    assert.equal(manager.instances('fn').length, 2, 'min instances are never reaped');
    runtime.crash(manager.instances('fn')[0]!.id);
    await settle();
    assert.equal(manager.instances('fn').filter((i) => i.state === 'ready').length, 2);
    assert.equal(runtime.started(), 3);
    await manager.close();
  });

  it('fails held requests when the start fails, fails fast while backing off, then retries', async () => {
    const clock = createManualClock();
    const { runtime, gates } = gatedRuntime();
    const manager = createInstanceManager({ runtime, clock });
    const held = manager.acquire(plan());
    await settle();
    gates[0]!.reject(new Error('boom at init'));
    await assert.rejects(
      held,
      (e) => hasCode(e, 'NIMBUS_ERR_START_FAILED') && /boom at init/.test((e as Error).message),
    );
    await assert.rejects(manager.acquire(plan()), (e) => hasCode(e, 'NIMBUS_ERR_START_FAILED'));
    assert.equal(runtime.started(), 1, 'no start while backing off');
    assert.match(manager.startError('fn/r1') ?? '', /boom at init/);
    clock.advance(1000);
    const retry = manager.acquire(plan());
    await settle();
    assert.equal(runtime.started(), 2);
    gates[1]!.resolve();
    (await retry).release();
    assert.equal(manager.startError('fn/r1'), undefined);
    await manager.close();
  });

  it('answers overloaded once the wait queue is full', async () => {
    const clock = createManualClock();
    const { runtime, gates } = gatedRuntime();
    const manager = createInstanceManager({ runtime, clock, maxQueuePerRevision: 2 });
    const held = [manager.acquire(plan({ max: 1 })), manager.acquire(plan({ max: 1 }))];
    for (const h of held) h.catch(() => {});
    await assert.rejects(manager.acquire(plan({ max: 1 })), (e) => hasCode(e, 'NIMBUS_ERR_OVERLOADED'));
    const retired = manager.retire('fn/r1', new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', 'deleted'));
    for (const h of held) await assert.rejects(h, (e) => hasCode(e, 'NIMBUS_ERR_FUNCTION_NOT_FOUND'));
    gates[0]!.resolve();
    await retired;
    assert.equal(runtime.list().length, 0, 'the instance that finished starting after the retire was stopped');
  });

  it('stops a recycled instance once its request is released, and gives up waiting when the signal aborts', async () => {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock });
    const lease = await manager.acquire(plan({ max: 1 }));
    const controller = new AbortController();
    const waiting = manager.acquire(plan({ max: 1 }), controller.signal);
    controller.abort(new Error('deadline'));
    await assert.rejects(waiting, /deadline/);
    lease.release({ recycle: true });
    await settle();
    assert.equal(runtime.list().length, 0);
    await manager.close();
  });

  it('freezes an instance idle past freezeAfterMs and thaws it before its next request', async () => {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 2000 });
    const first = await manager.acquire(plan());
    first.release();
    clock.advance(1000);
    await settle();
    assert.equal(manager.instances('fn')[0]!.state, 'ready', 'not idle long enough yet');
    clock.advance(2000);
    await settle();
    assert.equal(manager.instances('fn')[0]!.state, 'frozen');
    const lease = await manager.acquire(plan());
    const res = await lease.instance.fetch(new Request('http://x/'));
    assert.equal(await res.text(), 'ok', 'the memory runtime refuses fetches to a frozen instance');
    assert.equal(manager.instances('fn')[0]!.state, 'busy');
    assert.equal(runtime.started(), 1, 'thawed, not restarted');
    lease.release();
    await manager.close();
  });
});
