import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryDelayMs } from './policy.js';

describe('retry backoff', () => {
  it('doubles from the base up to the cap', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => retryDelayMs(n, 1000, 5000)),
      [1000, 2000, 4000, 5000, 5000],
    );
  });

  it('jitter takes up to its fraction off, never adds', () => {
    assert.equal(
      retryDelayMs(2, 1000, 60_000, 0.5, () => 0),
      2000,
    );
    assert.equal(
      retryDelayMs(2, 1000, 60_000, 0.5, () => 0.999_999),
      1000,
    );
    assert.equal(
      retryDelayMs(2, 1000, 60_000, 0.5, () => 0.5),
      1500,
    );
    const spread = new Set(Array.from({ length: 50 }, () => retryDelayMs(3, 1000, 60_000, 0.5)));
    assert.ok(spread.size > 1, 'random by default');
    for (const d of spread) assert.ok(d >= 2000 && d <= 4000, String(d));
  });
});
