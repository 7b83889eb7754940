import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { hasCode } from '../core/errors.js';
import { cronTrigger } from './cron.js';
import type { TriggerContext, TriggerEvent, TriggerSpec } from './types.js';

function fakeContext(config: Record<string, unknown>, start: string) {
  const clock = createManualClock(Date.parse(start));
  const fired: TriggerEvent[] = [];
  const spec: TriggerSpec = { id: 'nightly', type: 'cron', function: 'f', config, createdAt: start };
  const ctx: TriggerContext = {
    spec,
    clock,
    fire: async (event) => {
      fired.push(event);
      return 'succeeded';
    },
    setHealthy: () => {},
    counted: () => {},
  };
  return { clock, fired, ctx };
}

describe('cron trigger', () => {
  it('fires at the scheduled local time in its time zone, across a DST change, as time is stepped', async () => {
    const config = cronTrigger.validate({ schedule: '30 9 * * *', timezone: 'Europe/Paris' });
    // Paris leaves winter time (UTC+1) for summer time (UTC+2) on 2026-03-29.
    const { clock, fired, ctx } = fakeContext(config, '2026-03-27T00:00:00Z');
    const trigger = cronTrigger.create(ctx);
    await trigger.start();
    clock.advance(4 * 24 * 3600_000);
    assert.deepEqual(
      fired.map((e) => e.time?.toISOString()),
      ['2026-03-27T08:30:00.000Z', '2026-03-28T08:30:00.000Z', '2026-03-29T07:30:00.000Z', '2026-03-30T07:30:00.000Z'],
    );
    assert.equal(fired[0]?.id, 'nightly@2026-03-27T08:30:00.000Z', 'the tick time makes the event id');
    assert.equal(fired[0]?.type, 'io.nimbus.cron.tick');
    assert.deepEqual(JSON.parse(Buffer.from(fired[0]!.data).toString()).timezone, 'Europe/Paris');
    await trigger.stop();
    clock.advance(24 * 3600_000);
    assert.equal(fired.length, 4, 'nothing fires after stop');
  });

  it('defaults to UTC and supports seconds', async () => {
    const { clock, fired, ctx } = fakeContext(
      cronTrigger.validate({ schedule: '*/20 * * * * *' }),
      '2026-01-01T00:00:00Z',
    );
    await cronTrigger.create(ctx).start();
    clock.advance(60_000);
    assert.deepEqual(
      fired.map((e) => e.time?.toISOString().slice(11, 19)),
      ['00:00:20', '00:00:40', '00:01:00'],
    );
  });

  it('rejects a bad schedule, time zone or field', () => {
    const invalid = (e: unknown) => hasCode(e, 'NIMBUS_ERR_INVALID_REQUEST');
    assert.throws(() => cronTrigger.validate({ schedule: 'every day' }), invalid);
    assert.throws(() => cronTrigger.validate({ schedule: '* * * * *', timezone: 'Mars/Olympus' }), invalid);
    assert.throws(() => cronTrigger.validate({ schedule: '* * * * *', every: 1 }), /unknown field every/);
    assert.throws(() => cronTrigger.validate({}), /schedule/);
  });
});
