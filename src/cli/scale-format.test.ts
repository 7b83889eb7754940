import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScaleRevisionView } from './api-types.js';
import { formatScaleConfig, formatScaleViews } from './scale-format.js';

const view = (over: Partial<ScaleRevisionView> = {}): ScaleRevisionView => ({
  revision: 'r2',
  metric: 'concurrency',
  target: 10,
  targetUtilization: 0.7,
  min: 0,
  max: 10,
  desired: 3,
  ready: 2,
  starting: 1,
  draining: 0,
  panic: true,
  observed: { concurrency: { stable: 4.04, panic: 17.5, now: 20 }, rps: { stable: 3, panic: 9 }, extraDemand: 0 },
  queue: { length: 4, limit: 1000 },
  ...over,
});

describe('nimbus get: autoscaler', () => {
  it('shows the settings in force, and the warming windows', () => {
    assert.deepEqual(
      formatScaleConfig({
        min: 1,
        max: 5,
        idleTimeout: 300,
        initial: 2,
        metric: 'rps',
        target: 50,
        targetUtilization: 0.5,
        window: 120,
        scaleDownDelay: 30,
        maxQueue: 100,
        schedule: [
          { cron: '0 8 * * 1-5', timezone: 'Europe/Paris', duration: 36000, min: 3 },
          { cron: '0 12 * * *', duration: 5400, min: 4 },
        ],
      }),
      [
        ['scale', 'min 1, max 5, initial 2, idle timeout 300 s'],
        ['autoscaler', 'rps, target 50/s at 50%, window 120 s, scale-down delay 30 s, queue ≤ 100'],
        ['warming', 'min 3 from "0 8 * * 1-5" (Europe/Paris) for 10h; min 4 from "0 12 * * *" (UTC) for 1h30m'],
      ],
    );
  });
  it('shows the defaults for a revision stored before the autoscaler', () => {
    assert.deepEqual(formatScaleConfig({ min: 0, max: 10, idleTimeout: 300 }), [
      ['scale', 'min 0, max 10, initial 0, idle timeout 300 s'],
      ['autoscaler', "concurrency, default target, window 60 s, scale-down delay 0 s, queue node's default"],
    ]);
  });
  it('shows desired against ready, panic, the windows, the queue and an open warming window', () => {
    const text = formatScaleViews([
      view(),
      view({
        revision: 'r1',
        panic: false,
        desired: 3,
        ready: 3,
        starting: 0,
        min: 3,
        scheduled: { min: 3, until: '2026-11-25T17:00:00.000Z' },
        observed: {
          concurrency: { stable: null, panic: null, now: 0 },
          rps: { stable: null, panic: null },
          extraDemand: 0,
        },
        queue: { length: 0, limit: 1000 },
        reason: 'no data',
      }),
    ]);
    const [title, header, r2, r1] = text.split('\n');
    assert.equal(title, 'autoscaler:');
    assert.match(header!, /^REVISION +DESIRED +READY +STARTING +DRAINING +PANIC +STABLE\/PANIC +QUEUE +MIN +REASON$/);
    assert.match(r2!, /^r2 +3 +2 +1 +0 +yes +4 \/ 17\.5 +4\/1000 +0$/);
    assert.match(r1!, /^r1 +3 +3 +0 +0 +no +- \/ - +0\/1000 +3 \(warming until 17:00 UTC\) +no data$/);
    assert.equal(formatScaleViews([]), 'autoscaler: idle (no live revision)');
  });
});
