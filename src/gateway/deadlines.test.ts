import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { createDeadlines } from './deadlines.js';

test('deadlines expire in order, each once, and not when cancelled', () => {
  const clock = createManualClock(1000);
  const deadlines = createDeadlines(clock);
  const expired: string[] = [];
  deadlines.add(100, () => expired.push('a'));
  clock.advance(30);
  const b = deadlines.add(100, () => expired.push('b'));
  deadlines.add(100, () => expired.push('c'));
  deadlines.add(50, () => expired.push('short'));
  clock.advance(60);
  assert.deepEqual(expired, ['short']);
  deadlines.cancel(b);
  clock.advance(10);
  assert.deepEqual(expired, ['short', 'a']);
  clock.advance(30);
  assert.deepEqual(expired, ['short', 'a', 'c']);
  deadlines.cancel(b);
  clock.advance(1000);
  assert.deepEqual(expired, ['short', 'a', 'c']);
});

test('a deadline added after its list emptied still expires on time', () => {
  const clock = createManualClock(0);
  const deadlines = createDeadlines(clock);
  const expired: number[] = [];
  deadlines.cancel(deadlines.add(100, () => expired.push(1)));
  clock.advance(70);
  deadlines.add(100, () => expired.push(clock.now()));
  clock.advance(100);
  assert.deepEqual(expired, [170]);
});
