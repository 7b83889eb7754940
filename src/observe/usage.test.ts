import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createUsageMeter, usageCsv } from './usage.js';

const H = Date.UTC(2026, 10, 25, 14);

describe('usage metering', () => {
  it('sums invocations, GB-seconds billed per started millisecond, cold starts and egress per function and hour', () => {
    const meter = createUsageMeter({ path: ':memory:' });
    meter.record({ function: 'a', time: H + 10, durationMs: 100.2, memoryMb: 512, cold: true, egressBytes: 100 });
    meter.record({ function: 'a', time: H + 20, durationMs: 50, memoryMb: 512, cold: false, egressBytes: 20 });
    meter.record({ function: 'a', time: H + 30, durationMs: 0.3, memoryMb: 512, cold: false });
    meter.record({ function: 'a', time: H + 3600_000, durationMs: 1000, memoryMb: 1024, cold: false });
    meter.record({ function: 'b', time: H + 5, durationMs: 2000, memoryMb: 128, cold: true });
    const a = meter.query({ function: 'a' });
    assert.equal(a.length, 2);
    assert.deepEqual(a[0], {
      function: 'a',
      hour: '2026-11-25T14:00:00.000Z',
      invocations: 3,
      gbSeconds: (512 * (101 + 50 + 1)) / 1024 / 1000,
      coldStarts: 1,
      egressBytes: 120,
    });
    assert.equal(a[1]!.gbSeconds, 1, '1 GB for 1 s');
    assert.equal(meter.query({}).length, 3);
    assert.deepEqual(
      meter.query({ since: H + 3600_000 }).map((r) => r.function),
      ['a'],
    );
    assert.equal(meter.query({ function: 'b' })[0]!.gbSeconds, 0.25);
    meter.close();
  });

  it('exports CSV with a header row', () => {
    const csv = usageCsv([
      {
        function: 'a',
        hour: '2026-11-25T14:00:00.000Z',
        invocations: 2,
        gbSeconds: 0.5,
        coldStarts: 1,
        egressBytes: 9,
      },
    ]);
    assert.equal(
      csv,
      'function,hour,invocations,gb_seconds,cold_starts,egress_bytes\na,2026-11-25T14:00:00.000Z,2,0.500000,1,9\n',
    );
  });
});
