import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutputLimiter } from './lines.js';

describe('OutputLimiter', () => {
  it('lets a second worth of lines through, then drops and counts the rest', () => {
    const now = 0;
    const limiter = new OutputLimiter({ linesPerSecond: 10, bytesPerSecond: 1_000_000 }, () => now);
    const passed = Array.from({ length: 25 }, () => limiter.take(5)).filter(Boolean).length;
    assert.equal(passed, 10);
    assert.equal(limiter.takeDropped(), 15);
    assert.equal(limiter.takeDropped(), 0, 'the count resets once reported');
  });

  it('refills continuously with time', () => {
    let now = 0;
    const limiter = new OutputLimiter({ linesPerSecond: 10, bytesPerSecond: 1_000_000 }, () => now);
    for (let i = 0; i < 10; i++) limiter.take(1);
    assert.equal(limiter.take(1), false);
    now += 100; // a tenth of a second: one line
    assert.equal(limiter.take(1), true);
    assert.equal(limiter.take(1), false);
    now += 60_000; // never more than one second's worth is saved up
    assert.equal(Array.from({ length: 20 }, () => limiter.take(1)).filter(Boolean).length, 10);
  });

  it('limits bytes as well as lines', () => {
    const limiter = new OutputLimiter({ linesPerSecond: 1000, bytesPerSecond: 100 }, () => 0);
    assert.equal(limiter.take(60), true);
    assert.equal(limiter.take(60), false);
    assert.equal(limiter.take(40), true);
  });

  it('says how many lines were dropped and why', () => {
    const limiter = new OutputLimiter({ linesPerSecond: 10, bytesPerSecond: 100 });
    assert.equal(limiter.note(1), '[nimbus] … 1 line dropped: output over 10 lines/s or 100 bytes/s');
    assert.match(limiter.note(3), /3 lines dropped/);
  });
});
