import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, initialDeciderState } from './decider.js';
import { type AutoscaleSettings, autoscaleSettings } from './settings.js';
import { replay, type TimelineStep } from './timeline.js';

// Concurrency 10 per instance at 70%: 7 in flight per instance is the aim.
const settings = (over: Partial<AutoscaleSettings> = {}) => ({
  ...autoscaleSettings({ min: 0, max: 100, idleTimeout: 300 }, 10),
  ...over,
});
const desired = (steps: TimelineStep[], from: number, to: number) =>
  steps.slice(from, to).map((s) => s.decision.desired);
const panics = (steps: TimelineStep[], from: number, to: number) => steps.slice(from, to).map((s) => s.decision.panic);

describe('decider timelines (replayed with a simulated clock, one decision per second)', () => {
  it('step load from zero: no data at zero, then target-sized at once, panic for one stable window', () => {
    const steps = replay(settings(), { seconds: 200, load: (t) => (t < 10 ? 0 : 14) });
    for (const s of steps.slice(0, 10)) {
      assert.equal(s.decision.reason, 'no data', `t=${s.t}`);
      assert.equal(s.decision.desired, 0);
      assert.equal(s.decision.stable, null);
    }
    // 14 in flight / 7 per instance = 2, from the first second; never more, never less.
    assert.deepEqual(new Set(desired(steps, 10, 200)), new Set([2]));
    // Coming from zero, 2 wanted for max(1, 0) ready is 200%: panic, which ends a stable window
    // (60 s) after the last second over the threshold (t=10).
    assert.ok(panics(steps, 10, 71).every(Boolean));
    assert.ok(panics(steps, 71, 200).every((p) => !p));
  });

  it('step 1 -> 10x: the panic window follows in 6 decisions, the stable window would take 60', () => {
    const steps = replay(settings(), { seconds: 260, load: (t) => (t < 120 ? 7 : 70) });
    assert.deepEqual(desired(steps, 110, 120), Array(10).fill(1));
    assert.ok(panics(steps, 110, 120).every((p) => !p));
    assert.deepEqual(desired(steps, 120, 128), [3, 4, 6, 7, 9, 10, 10, 10]);
    assert.equal(steps[120]!.decision.panic, true, 'panic window desire 3 >= 200% of 1 ready');
    assert.equal(steps[120]!.decision.desiredStable, 2, 'the stable window alone would want 2');
    assert.deepEqual(new Set(desired(steps, 125, 260)), new Set([10]));
    assert.equal(steps[180]!.decision.panic, true, 'last over the threshold at t=121: panic until 181');
    assert.equal(steps[182]!.decision.panic, false);
  });

  it('spike: never scales down while panicking, then down at most by half per decision', () => {
    const steps = replay(settings(), { seconds: 200, load: (t) => (t < 60 ? 7 : t < 63 ? 70 : 7) });
    assert.deepEqual(desired(steps, 59, 63), [1, 3, 4, 6]);
    // The spike is gone at t=63, the panic window still sees it, and panic holds the count.
    for (const s of steps.slice(63, 121)) {
      assert.equal(s.decision.desired, 6, `t=${s.t}`);
      assert.equal(s.decision.panic, true, `t=${s.t}`);
    }
    assert.equal(steps[70]!.decision.reason, 'panic hold');
    // Out of panic: 6 -> 3 (floor(6 / 2)) -> 1, and it stays at 1 for the 7 in flight.
    assert.deepEqual(desired(steps, 121, 125), [3, 1, 1, 1]);
    assert.equal(steps[121]!.decision.panic, false);
    assert.deepEqual(new Set(desired(steps, 122, 200)), new Set([1]));
  });

  it('decay to zero: follows the stable window down, keeps one for the grace, then zero; and back', () => {
    const steps = replay(settings(), { seconds: 420, load: (t) => (t < 60 ? 70 : t < 400 ? 0 : 14) });
    const down = desired(steps, 60, 120);
    for (let i = 1; i < down.length; i++) assert.ok(down[i]! <= down[i - 1]!, `never up again: ${down}`);
    assert.equal(down[0], 10);
    assert.equal(steps[113]!.decision.desired, 1);
    // Last request at t=60; idleTimeout 300 s: one instance until 360, zero from then on.
    for (const s of steps.slice(113, 359)) assert.equal(s.decision.desired, 1, `t=${s.t}`);
    assert.equal(steps[118]!.decision.reason, undefined);
    assert.equal(steps[200]!.decision.reason, 'scale-to-zero grace');
    assert.deepEqual(desired(steps, 359, 400), Array(41).fill(0));
    assert.equal(steps[359]!.decision.reason, 'idle');
    assert.equal(steps[399]!.decision.reason, 'no data', 'a revision at zero reports nothing');
    // Back from zero: history starts again, so 14 shows at full height on the first decision.
    assert.deepEqual(desired(steps, 400, 405), [2, 2, 2, 2, 2]);
  });

  it('scale-up rate: at most maxScaleUpRate x ready per decision (and at least one more)', () => {
    const steps = replay(settings({ maxScaleUpRate: 2 }), { seconds: 140, load: (t) => (t < 60 ? 7 : 700) });
    assert.deepEqual(desired(steps, 59, 66), [1, 2, 4, 8, 16, 32, 64]);
    assert.equal(steps[66]!.decision.desired, 100, 'capped by max');
  });

  it('scale-down rate: at most a halving per decision with the default rate 2', () => {
    const steps = replay(settings({ idleTimeoutMs: 5000 }), {
      seconds: 80,
      load: (t) => (t < 60 ? 140 : 0),
      initial: 0,
    });
    assert.equal(steps[59]!.decision.desired, 20);
    // Idle for 5 s (the grace) from t=64: the windows stop counting; 19 -> 9 -> 4 -> 2 -> 1 -> 0.
    assert.deepEqual(desired(steps, 63, 70), [19, 9, 4, 2, 1, 0, 0]);
    assert.equal(steps[64]!.decision.reason, 'idle');
  });

  it('scale-down delay: a lower desire is applied only once it held for the delay', () => {
    const steps = replay(settings({ scaleDownDelayMs: 30_000 }), {
      seconds: 300,
      load: (t) => (t < 100 ? 14 : 7),
    });
    // Without the delay the stable window gets to 1 at t=159; with it, once 2 is 30 s old.
    const plain = replay(settings(), { seconds: 300, load: (t) => (t < 100 ? 14 : 7) });
    const firstOne = (s: TimelineStep[]) => s.findIndex((x) => x.t > 100 && x.decision.desired === 1);
    assert.equal(firstOne(plain), 159);
    assert.equal(firstOne(steps), 188, 'the last decision for 2 was at t=158 (clock 159 s): 30 s later');
    assert.equal(steps[firstOne(plain)]!.decision.reason, 'scale-down delay');
  });

  it('min and max bound every decision; initial > 1 starts in panic and keeps its instances for a window', () => {
    const steps = replay(settings({ min: 2, max: 4, initial: 4 }), {
      seconds: 200,
      initial: 4,
      load: (t) => (t < 100 ? 0 : 1000),
    });
    assert.deepEqual(new Set(desired(steps, 0, 60)), new Set([4]), 'initial kept through the first stable window');
    assert.ok(panics(steps, 0, 60).every(Boolean));
    assert.deepEqual(new Set(desired(steps, 60, 100)), new Set([2]), 'then down to min (halving from 4), never below');
    assert.deepEqual(new Set(desired(steps, 100, 200)), new Set([4]), 'never above max');
  });

  it('extra demand (async jobs queued) counts like requests in flight', () => {
    const steps = replay(settings(), { seconds: 30, load: () => 0, extraDemand: (t) => (t < 10 ? 0 : 21), initial: 1 });
    assert.equal(steps[5]!.decision.desired, 1);
    assert.deepEqual(desired(steps, 10, 13), [3, 3, 3]);
  });

  it('scales on requests per second with metric rps (target 200 at 70%: 140 per instance)', () => {
    const s = autoscaleSettings({ min: 0, max: 100, idleTimeout: 300, metric: 'rps' }, 10);
    assert.equal(s.target, 200);
    const steps = replay(s, { seconds: 30, load: () => 1, arrivals: () => 400 });
    assert.equal(steps[0]!.decision.stable, 400);
    assert.deepEqual(new Set(desired(steps, 0, 30)), new Set([3]));
  });

  it('no data is a value: the current size is kept', () => {
    const s = settings();
    const d = decide(
      s,
      { ready: 3, starting: 1, stable: null, panic: null, lastActiveAt: 0 },
      1000,
      initialDeciderState(0, 0),
    );
    assert.equal(d.desired, 4);
    assert.equal(d.reason, 'no data');
  });
});

describe('autoscale settings', () => {
  it('defaults to Knative values, the function concurrency as target, and caps the target at it', () => {
    const s = autoscaleSettings({ min: 0, max: 10, idleTimeout: 300 }, 10);
    assert.deepEqual(
      [s.target, s.targetUtilization, s.stableWindowMs, s.panicWindowMs, s.maxScaleUpRate, s.maxScaleDownRate],
      [10, 0.7, 60_000, 6000, 1000, 2],
    );
    assert.equal(s.initial, 0);
    assert.equal(autoscaleSettings({ min: 0, max: 10, idleTimeout: 300, target: 50 }, 10).target, 10);
    assert.equal(autoscaleSettings({ min: 0, max: 10, idleTimeout: 300, window: 20 }, 10).panicWindowMs, 2000);
  });
});
