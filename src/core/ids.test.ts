import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId, randomHex } from './ids.js';

test('ids: prefix plus the asked number of random bytes as hex', () => {
  assert.match(newId('inst'), /^inst_[0-9a-f]{10}$/);
  assert.match(newId('s', 3), /^s_[0-9a-f]{6}$/);
});

test('ids: no repeats across many pool refills, including ids that straddle a refill', () => {
  const seen = new Set<string>();
  // 7-byte ids do not divide the 4 KiB pool: some draws need a refill part-way.
  for (let i = 0; i < 5000; i++) seen.add(randomHex(7));
  assert.equal(seen.size, 5000);
  assert.throws(() => randomHex(5000), RangeError);
});
