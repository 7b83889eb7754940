import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryRuntime } from '../../test/support/memory-runtime.js';
import { createManualClock } from '../core/clock.js';
import { createInstanceManager } from './manager.js';
import { plan, settle } from './test-plan.js';

describe('instance manager: scheduled warming and freezing', () => {
  it("keeps a scheduled window's minimum warm while it is open, and lets it go after", async () => {
    // Monday 2026-11-23 07:59 UTC = 08:59 in Paris; the window opens at 09:00 Paris for 2 h.
    const clock = createManualClock(Date.parse('2026-11-23T07:59:00Z'));
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 0 });
    const p = plan({
      concurrency: 10,
      idleTimeout: 1,
      schedule: [{ cron: '0 9 * * 1-5', timezone: 'Europe/Paris', duration: 7200, min: 3 }],
    });
    manager.ensureMin(p);
    await settle();
    assert.equal(runtime.started(), 0, 'closed at set-up: nothing started');
    assert.equal(manager.scale('fn')[0]!.min, 0);
    for (let i = 0; i < 60; i++) clock.advance(1000);
    await settle();
    const open = manager.scale('fn')[0]!;
    assert.equal(open.min, 3);
    assert.deepEqual(open.scheduled, { min: 3, until: '2026-11-23T10:00:00.000Z' });
    assert.equal(manager.instances('fn').filter((i) => i.state === 'ready').length, 3, 'no traffic, 3 warm');
    clock.advance(2 * 3600_000 - 1000);
    await settle();
    assert.equal(manager.instances('fn').length, 3, 'still open one second before it closes');
    for (let i = 0; i < 5; i++) clock.advance(1000);
    await settle();
    assert.equal(manager.scale('fn')[0]!.min, 0);
    assert.equal(manager.scale('fn')[0]!.scheduled, undefined);
    assert.equal(manager.instances('fn').length, 0, 'closed and idle: back to zero');
    await manager.close();
  });

  it("starts a window's minimum at set-up when the window is already open", async () => {
    const clock = createManualClock(Date.parse('2026-11-23T09:30:00Z'));
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 0 });
    manager.ensureMin(plan({ schedule: [{ cron: '0 9 * * *', duration: 3600, min: 2 }] }));
    await settle();
    assert.equal(runtime.started(), 2);
    await manager.close();
  });

  it('freezes an instance idle past freezeAfterMs and thaws it before its next request', async () => {
    const clock = createManualClock();
    const runtime = createMemoryRuntime();
    const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 2000 });
    const first = await manager.acquire(plan({ concurrency: 10 }));
    first.release();
    clock.advance(1000);
    await settle();
    assert.equal(manager.instances('fn')[0]!.state, 'ready', 'not idle long enough yet');
    clock.advance(2000);
    await settle();
    assert.equal(manager.instances('fn')[0]!.state, 'frozen');
    const lease = await manager.acquire(plan({ concurrency: 10 }));
    const res = await lease.instance.fetch(new Request('http://x/'));
    assert.equal(await res.text(), 'ok', 'the memory runtime refuses fetches to a frozen instance');
    assert.equal(manager.instances('fn')[0]!.state, 'busy');
    assert.equal(runtime.started(), 1, 'thawed, not restarted');
    lease.release();
    await manager.close();
  });
});
