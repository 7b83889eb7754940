import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricCollector } from './collector.js';

describe('metric collector', () => {
  it('has no data until something is observed, and none at zero', () => {
    const c = new MetricCollector(0, 60_000);
    assert.deepEqual(c.window(500, 6000), { concurrency: null, rps: null });
    c.tick(1000, false);
    assert.deepEqual(c.window(1500, 6000), { concurrency: null, rps: null }, 'no sample written at zero');
    c.tick(2000, true);
    assert.deepEqual(c.window(2000, 6000), { concurrency: 0, rps: 0 }, 'idle instances report zeros');
  });

  it('integrates concurrency over time: 10 requests for a tenth of a second average 1', () => {
    const c = new MetricCollector(0, 60_000);
    c.tick(1000, true);
    c.set(1000, 10);
    c.set(1100, 0);
    c.tick(2000, true);
    assert.equal(c.window(2000, 1000).concurrency, 1);
    assert.equal(c.window(2000, 2000).concurrency, 0.5);
    assert.equal(c.lastActiveAt(5000), 1100);
  });

  it('counts arrivals per second, never over less than a second', () => {
    const c = new MetricCollector(0, 60_000);
    for (let i = 0; i < 50; i++) c.request(10);
    assert.equal(c.window(20, 6000).rps, 50);
    c.tick(1000, true);
    c.tick(2000, true);
    assert.equal(Math.round(c.window(2000, 2000).rps!), 25);
  });

  it('starts history again after a quiet window at zero, so a burst shows at full height', () => {
    const c = new MetricCollector(0, 6000);
    c.set(0, 1);
    c.set(500, 0);
    c.tick(1000, true);
    for (let t = 2000; t <= 20_000; t += 1000) c.tick(t, false);
    c.set(20_200, 200);
    assert.equal(c.window(20_200, 6000).concurrency, 200, 'the first moment of a burst is the burst');
    c.tick(21_000, false);
    assert.equal(c.window(21_000, 6000).concurrency, 200);
    assert.equal(c.lastActiveAt(21_000), 21_000);
  });
});
