import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { createLiveFilter, createLogStore, type LogRecord, parseStatusFilter, requestRecord } from './log-store.js';

const line = (fn: string, time: number, text: string, requestId?: string): LogRecord => ({
  time,
  function: fn,
  revision: 'r1',
  instance: 'i1',
  stream: 'stdout',
  line: text,
  ...(requestId ? { requestId } : {}),
});
const request = (fn: string, time: number, requestId: string, status: number) =>
  requestRecord(
    { requestId, function: fn, revision: 'r1', instance: 'i1', status, durationMs: 1.234, cold: false },
    time,
  );

describe('log store', () => {
  it('keeps one request record per invocation, filtered by request id, status and time', async () => {
    const logs = createLogStore({ path: ':memory:' });
    logs.append(line('f', 1000, 'ok start', 'a'));
    logs.append(request('f', 1001, 'a', 200));
    logs.append(line('f', 2000, 'boom', 'b'));
    logs.append(request('f', 2001, 'b', 503));
    logs.append(line('f', 3000, 'not found', 'c'));
    logs.append(request('f', 3001, 'c', 404));
    logs.append(line('g', 3000, 'other function', 'd'));

    assert.deepEqual(
      (await logs.query({ function: 'f', requestId: 'b' })).map((r) => r.line),
      ['boom', '503 1.23 ms warm'],
    );
    const failed = await logs.query({ function: 'f', status: parseStatusFilter('5xx') });
    assert.deepEqual(
      failed.map((r) => [r.stream, r.requestId]),
      [
        ['stdout', 'b'],
        ['request', 'b'],
      ],
      'the failed request and the lines it logged',
    );
    assert.equal(failed[1]!.status, 503);
    assert.equal(failed[1]!.durationMs, 1.23);
    assert.equal(failed[1]!.cold, false);
    assert.deepEqual(
      (await logs.query({ function: 'f', kind: 'request', since: 1500, until: 3001 })).map((r) => r.requestId),
      ['b'],
    );
    assert.deepEqual(
      (await logs.query({ function: 'f', status: parseStatusFilter('400-404'), kind: 'lines' })).map((r) => r.line),
      ['not found'],
    );
    await logs.close();
  });

  it('holds retention by count per function, by age and by total size', async () => {
    const clock = createManualClock(1_000_000);
    const logs = createLogStore({
      path: ':memory:',
      clock,
      maxRecordsPerFunction: 50,
      maxAgeMs: 60_000,
      maxBytes: 64 * 1024,
      pruneIntervalMs: 10_000,
    });
    for (let i = 0; i < 120; i++) logs.append(line('a', clock.now(), `a${i}`));
    await logs.prune();
    const a = await logs.query({ function: 'a', limit: 1000 });
    assert.equal(a.length, 50, 'only the newest 50 of a function');
    assert.equal(a[0]!.line, 'a70');

    // Age: the timer prunes without any new append.
    logs.append(line('b', clock.now(), 'b-old'));
    clock.advance(61_000);
    logs.append(line('b', clock.now(), 'b-new'));
    clock.advance(10_000);
    assert.deepEqual(
      (await logs.query({ function: 'b' })).map((r) => r.line),
      ['b-new'],
    );
    assert.equal((await logs.query({ function: 'a' })).length, 0, 'a is older than a minute now');

    // Size: 1 KB lines over many functions; the total stays under 64 KB, the newest are kept.
    const big = 'x'.repeat(1000);
    for (let i = 0; i < 200; i++) logs.append(line(`s${i % 3}`, clock.now(), `${i} ${big}`));
    await logs.prune();
    const kept = (await Promise.all([0, 1, 2].map((k) => logs.query({ function: `s${k}`, limit: 1000 })))).flat();
    const bytes = kept.reduce((n, r) => n + r.line.length + 64, 0);
    assert.ok(bytes <= 64 * 1024, `kept ${bytes} bytes`);
    assert.ok(kept.length >= 55, `kept ${kept.length} records`);
    assert.ok(
      kept.some((r) => r.line.startsWith('199 ')),
      'the newest record stays',
    );
    await logs.close();
  });

  it('a live status filter holds a request’s lines until its record says whether it matched', () => {
    const live = createLiveFilter({ function: 'f', status: { min: 500, max: 599 } });
    assert.deepEqual(live(line('f', 1, 'x', 'a')), []);
    assert.deepEqual(live(line('f', 1, 'y', 'b')), []);
    assert.deepEqual(live(request('f', 2, 'a', 200)), []);
    assert.deepEqual(
      live(request('f', 2, 'b', 500)).map((r) => [r.stream, r.requestId]),
      [
        ['stdout', 'b'],
        ['request', 'b'],
      ],
    );
  });

  it('reads status filters', () => {
    assert.deepEqual(parseStatusFilter('5xx'), { min: 500, max: 599 });
    assert.deepEqual(parseStatusFilter('404'), { min: 404, max: 404 });
    assert.deepEqual(parseStatusFilter('400-499'), { min: 400, max: 499 });
    assert.equal(parseStatusFilter('6xx'), undefined);
    assert.equal(parseStatusFilter('abc'), undefined);
    assert.equal(parseStatusFilter('500-400'), undefined);
  });
});
