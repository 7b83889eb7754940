import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryRuntime } from '../../test/support/memory-runtime.js';
import { createManualClock } from '../core/clock.js';
import { hasCode, NimbusError } from '../core/errors.js';
import { createInstanceManager, type InstanceManager } from './manager.js';
import { instancesToDrain, restartBackoffMs, type ScaleView } from './scaling.js';
import { plan, settle } from './test-plan.js';
import type { Lease, RevisionPlan } from './types.js';

type ManualClock = ReturnType<typeof createManualClock>;

/** A runtime whose starts complete only when the test says so. */
function gatedRuntime() {
  const gates: { resolve(): void; reject(e: Error): void }[] = [];
  const runtime = createMemoryRuntime({
    startGate: () => new Promise<void>((resolve, reject) => gates.push({ resolve, reject })),
  });
  return { runtime, gates };
}

/** `n` requests at once on a revision at zero; the first tick sizes the revision for them. */
async function burst(manager: InstanceManager, clock: ManualClock, p: RevisionPlan, n: number): Promise<Lease[]> {
  const pending = Array.from({ length: n }, () => manager.acquire(p));
  await settle();
  clock.advance(1000);
  await settle();
  return Promise.all(pending);
}

function groupByInstance(leases: Lease[]): Map<string, Lease[]> {
  const out = new Map<string, Lease[]>();
  for (const l of leases) out.set(l.instance.id, [...(out.get(l.instance.id) ?? []), l]);
  return out;
}

/** Ticks (up to a minute) until the autoscaler wants `n` instances. */
async function untilDesired(manager: InstanceManager, clock: ManualClock, n: number): Promise<ScaleView> {
  for (let i = 0; i < 60; i++) {
    const view = manager.scale('fn')[0]!;
    if (view.desired === n) return view;
    clock.advance(1000);
    await settle();
  }
  return manager.scale('fn')[0]!;
}

describe('actuator choices', () => {
  it('drains the instances that finish soonest: fewest in flight, frozen first, longest unused', () => {
    const c = [
      { id: 'busy', inFlight: 3, lastUsedAt: 0 },
      { id: 'recent', inFlight: 0, lastUsedAt: 900 },
      { id: 'old', inFlight: 0, lastUsedAt: 100 },
      { id: 'frozen', inFlight: 0, frozen: true, lastUsedAt: 950 },
    ];
    assert.deepEqual(instancesToDrain(c, 3), ['frozen', 'old', 'recent']);
    assert.deepEqual(instancesToDrain(c, 0), []);
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
    // Concurrency 10 at 70%: one request wants one instance (with concurrency 1 it would want two).
    const pending = manager.acquire(plan({ concurrency: 10 })).then((l) => {
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
    const warm = await manager.acquire(plan({ concurrency: 10 }));
    assert.equal(warm.cold, false);
    assert.equal(runtime.started(), 1);
    warm.release();
    await manager.close();
  });

  it('scales from zero at once, adds instances for a burst at once, and serves held requests in order', async () => {
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
    assert.equal(manager.scale('fn')[0]!.queue.length, 6);
    assert.equal(
      runtime.started(),
      2,
      'the first request pokes the autoscaler (one instance); the third outgrows its 2 places: 3 wanted at once, max is 2',
    );
    assert.equal(manager.scale('fn')[0]!.panic, true);
    clock.advance(1000);
    await settle();
    assert.equal(runtime.started(), 2, '6 held / (2 x 70%) = 5 wanted at the tick, still max 2');
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

  it('drains the surplus as load falls: a drained instance finishes its request before it stops', async () => {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 0 });
    const p = plan({ concurrency: 10, targetUtilization: 1, window: 6, idleTimeout: 30 });
    const leases = await burst(manager, clock, p, 21);
    const byInstance = groupByInstance(leases);
    assert.equal(byInstance.size, 3, '21 in flight / 10 per instance');
    // Keep one request in flight on each instance.
    for (const group of byInstance.values()) for (const l of group.slice(1)) l.release();
    const kept = [...byInstance.values()].map((g) => g[0]!);
    const view = await untilDesired(manager, clock, 1);
    assert.equal(view.desired, 1, '3 in flight / 10 per instance, once panic is over');
    assert.equal(view.panic, false);
    const states = manager.instances('fn').map((i) => i.state);
    assert.deepEqual(states.sort(), ['busy', 'draining', 'draining']);
    assert.equal(runtime.list().length, 3, 'nothing stopped while its request runs');
    const draining = manager.instances('fn').filter((i) => i.state === 'draining');
    const next = await manager.acquire(p);
    assert.ok(!draining.some((d) => d.id === next.instance.id), 'a draining instance takes no new request');
    next.release();
    for (const l of kept) if (draining.some((d) => d.id === l.instance.id)) l.release();
    await settle();
    assert.equal(runtime.list().length, 1);
    assert.match(manager.ended('fn')[0]!.reason, /scaled down/);
    for (const l of kept) l.release();
    // Idle for idleTimeout (30 s): down to zero.
    for (let i = 0; i < 32; i++) clock.advance(1000);
    await settle();
    assert.equal(manager.instances('fn').length, 0);
    await manager.close();
  });

  /** Two instances, one request left on each, then load falls: one of them is drained. */
  async function drainOneOfTwo(upgraded: boolean) {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 0 });
    const p = plan({ concurrency: 10, targetUtilization: 1, window: 6, idleTimeout: 300 });
    const leases = await burst(manager, clock, p, 11);
    const [a, b] = [...groupByInstance(leases).values()];
    for (const l of [...a!.slice(1), ...b!.slice(1)]) l.release();
    const kept = [a![0]!, b![0]!];
    if (upgraded) for (const l of kept) l.outlivesTimeout();
    await untilDesired(manager, clock, 1);
    const [draining] = manager.instances('fn').filter((i) => i.state === 'draining');
    assert.ok(draining, 'one of the two drained, its request still running');
    return { clock, runtime, manager, kept, draining };
  }

  it('stops a drained instance whose request outlives the function timeout', async () => {
    const { clock, runtime, manager, kept } = await drainOneOfTwo(false);
    clock.advance(2000); // timeoutMs (1000) + 1 s
    await settle();
    assert.equal(runtime.list().length, 1);
    assert.match(manager.ended('fn')[0]!.reason, /outlived the timeout/);
    for (const l of kept) l.release();
    await manager.close();
  });

  it('waits for an upgraded connection (WebSocket) on a drained instance past the timeout, then stops it', async () => {
    const { clock, runtime, manager, kept, draining } = await drainOneOfTwo(true);
    clock.advance(60_000); // far past timeoutMs (1000) + 1 s
    await settle();
    assert.equal(runtime.list().length, 2, 'the open connection keeps its instance');
    kept.find((l) => l.instance.id === draining.id)!.release();
    await settle();
    assert.equal(runtime.list().length, 1);
    assert.equal(manager.ended('fn')[0]!.reason, 'scaled down');
    for (const l of kept) l.release();
    await manager.close();
  });

  it('starts scale.initial instances at set-up and keeps them for a stable window (Knative starts in panic)', async () => {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 0 });
    const p = plan({ concurrency: 10, initial: 3, window: 6, idleTimeout: 1 });
    manager.ensureMin(p);
    await settle();
    assert.equal(manager.instances('fn').filter((i) => i.state === 'ready').length, 3);
    clock.advance(5000);
    await settle();
    assert.equal(manager.instances('fn').length, 3, 'held while the first window fills');
    for (let i = 0; i < 10; i++) clock.advance(1000);
    await settle();
    assert.equal(manager.instances('fn').length, 0, 'no traffic at all: down to zero (min 0)');
    await manager.close();
  });

  it('adds extra demand (async queue depth) to what the autoscaler sees', async () => {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, extraDemand: () => 14 });
    const p = plan({ concurrency: 10 });
    manager.ensureMin(p);
    assert.equal(runtime.started(), 0, 'initial defaults to min (0)');
    (await manager.acquire(p)).release();
    clock.advance(1000);
    await settle();
    const view = manager.scale('fn')[0]!;
    assert.equal(view.observed.extraDemand, 14);
    assert.equal(view.desired, 2, '(~0 in flight + 14) / 7 per instance');
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
    const held = manager.acquire(plan({ concurrency: 10 }));
    await settle();
    gates[0]!.reject(new Error('boom at init'));
    await assert.rejects(
      held,
      (e) => hasCode(e, 'NIMBUS_ERR_START_FAILED') && /boom at init/.test((e as Error).message),
    );
    await assert.rejects(manager.acquire(plan({ concurrency: 10 })), (e) => hasCode(e, 'NIMBUS_ERR_START_FAILED'));
    assert.equal(runtime.started(), 1, 'no start while backing off');
    assert.match(manager.startError('fn/r1') ?? '', /boom at init/);
    clock.advance(1000);
    const retry = manager.acquire(plan({ concurrency: 10 }));
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
    assert.ok(!runtime.list().some((i) => i.id === lease.instance.id), 'the recycled instance stopped');
    assert.match(manager.ended('fn')[0]!.reason, /recycled after a timeout/);
    // The autoscaler still wants one instance until its next decision: a fresh one replaces it.
    assert.equal(runtime.list().length, 1);
    await manager.close();
  });

  it('decides at once when a burst outgrows the spare capacity of running instances, not at the next tick', async () => {
    const clock = createManualClock();
    const { runtime, gates } = gatedRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 0 });
    const p = plan({ concurrency: 2, min: 1, max: 10 });
    manager.ensureMin(p);
    gates[0]!.resolve();
    await settle();
    // A minute of quiet: the windows hold zeros, so the tick alone would see a burst only slowly.
    for (let i = 0; i < 60; i++) clock.advance(1000);
    await settle();
    assert.equal(runtime.started(), 1);
    const leases = [manager.acquire(p), manager.acquire(p)];
    await settle();
    assert.equal(runtime.started(), 1, 'two requests fit the ready instance: no decision');
    const held = Array.from({ length: 8 }, () => manager.acquire(p));
    await settle();
    const view = manager.scale('fn')[0]!;
    assert.equal(view.queue.length, 8);
    assert.equal(view.panic, true);
    // Decided whenever the held requests outgrew the places of live instances: at 3 in all
    // (3 / 1.4 → 3 instances, 6 places), then at 7 (→ 5 instances, 10 places): a place for each.
    assert.equal(view.desired, 5, 'decided without a tick');
    assert.equal(runtime.started(), 5);
    clock.advance(1000);
    await settle();
    const tick = manager.scale('fn')[0]!;
    assert.equal(tick.desired, 5, 'the panic window alone (one second of 10 in six) would want 2; panic holds 5');
    assert.equal(tick.reason, 'panic hold');
    for (const g of gates.slice(1)) g.resolve();
    assert.equal((await untilDesired(manager, clock, 8)).desired, 8, 'then the window: 10 / (2 x 70%) = 8');
    for (const g of gates) g.resolve();
    for (const lease of await Promise.all([...leases, ...held])) lease.release();
    await manager.close();
  });
});
