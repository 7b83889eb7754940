import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDurationSeconds } from '../build/duration.js';
import type { ScaleSchedule } from '../core/types.js';
import { effectiveMin, openWindow, parseSchedules } from './schedule.js';

const at = (iso: string) => Date.parse(iso);
// Weekdays 08:00 in Paris, for 10 hours, keep 3.
const office: ScaleSchedule = { cron: '0 8 * * 1-5', timezone: 'Europe/Paris', duration: 10 * 3600, min: 3 };

describe('scheduled warming: effectiveMin', () => {
  it('opens at the occurrence (inclusive) and closes after the duration (exclusive), in the time zone', () => {
    // Wednesday 2026-11-25: Paris is UTC+1, so the window is 07:00-17:00 UTC.
    assert.equal(effectiveMin([office], at('2026-11-25T06:59:59.999Z')), 0);
    assert.equal(effectiveMin([office], at('2026-11-25T07:00:00.000Z')), 3);
    assert.equal(effectiveMin([office], at('2026-11-25T16:59:59.999Z')), 3);
    assert.equal(effectiveMin([office], at('2026-11-25T17:00:00.000Z')), 0);
    assert.deepEqual(openWindow([office], at('2026-11-25T12:00:00Z')), { min: 3, until: at('2026-11-25T17:00:00Z') });
  });

  it('follows daylight saving time: 08:00 in Paris is 07:00 UTC in winter, 06:00 UTC in summer', () => {
    // Clocks go forward on Sunday 2026-03-29.
    assert.equal(effectiveMin([office], at('2026-03-27T06:30:00Z')), 0, 'Friday (UTC+1): not yet');
    assert.equal(effectiveMin([office], at('2026-03-27T07:00:00Z')), 3);
    assert.equal(effectiveMin([office], at('2026-03-30T06:00:00Z')), 3, 'Monday (UTC+2): already open');
    assert.equal(effectiveMin([office], at('2026-03-30T15:59:59Z')), 3);
    assert.equal(effectiveMin([office], at('2026-03-30T16:00:00Z')), 0);
  });

  it('stays closed on days the cron skips, and reads the cron in UTC without a time zone', () => {
    assert.equal(effectiveMin([office], at('2026-11-28T10:00:00Z')), 0, 'Saturday');
    assert.equal(effectiveMin([office], at('2026-11-29T10:00:00Z')), 0, 'Sunday');
    const utc = { ...office, timezone: undefined };
    assert.equal(effectiveMin([utc], at('2026-11-25T07:30:00Z')), 0);
    assert.equal(effectiveMin([utc], at('2026-11-25T08:00:00Z')), 3);
  });

  it('carries a window across midnight, and across a weekend when the duration says so', () => {
    const night: ScaleSchedule = { cron: '0 22 * * *', duration: 4 * 3600, min: 1 };
    assert.equal(effectiveMin([night], at('2026-11-26T01:59:00Z')), 1);
    assert.equal(effectiveMin([night], at('2026-11-26T02:00:00Z')), 0);
    const weekend: ScaleSchedule = { cron: '0 18 * * 5', duration: 60 * 3600, min: 2 };
    assert.equal(effectiveMin([weekend], at('2026-11-29T12:00:00Z')), 2, 'Sunday noon, opened Friday 18:00');
    assert.equal(effectiveMin([weekend], at('2026-11-30T06:00:00Z')), 0, 'Monday 06:00: 60 h have passed');
  });

  it('takes the highest minimum of the open windows; none or an empty list is 0', () => {
    const lunch: ScaleSchedule = { cron: '0 12 * * *', timezone: 'Europe/Paris', duration: 3600, min: 5 };
    assert.equal(effectiveMin([office, lunch], at('2026-11-25T11:30:00Z')), 5);
    assert.equal(effectiveMin([office, lunch], at('2026-11-25T12:30:00Z')), 3);
    assert.equal(effectiveMin([], at('2026-11-25T12:30:00Z')), 0);
    assert.equal(effectiveMin(undefined, at('2026-11-25T12:30:00Z')), 0);
  });
});

describe('scheduled warming: parseSchedules', () => {
  const parse = (raw: unknown) => parseSchedules(raw, parseDurationSeconds);
  it('accepts windows with durations as strings or seconds', () => {
    assert.deepEqual(parse([{ cron: '0 8 * * 1-5', timezone: 'Europe/Paris', duration: '10h', min: 3 }]), {
      schedules: [{ cron: '0 8 * * 1-5', timezone: 'Europe/Paris', duration: 36000, min: 3 }],
    });
    assert.deepEqual(parse([{ cron: '*/30 * * * *', duration: 600, min: 0 }]), {
      schedules: [{ cron: '*/30 * * * *', duration: 600, min: 0 }],
    });
  });
  it('names the entry and field of what is wrong', () => {
    const error = (raw: unknown) => {
      const r = parse(raw);
      return 'error' in r ? r.error : '';
    };
    assert.match(error({ cron: '0 8 * * *' }), /expected a list of windows/);
    assert.match(
      error([{ cron: '0 8 * * 9', duration: '1h', min: 1 }]),
      /^\[0\]\.cron: invalid cron expression "0 8 \* \* 9"/,
    );
    assert.match(
      error([{ cron: '0 8 * * *', timezone: 'Mars/Olympus', duration: '1h', min: 1 }]),
      /^\[0\]\.timezone: unknown time zone/,
    );
    assert.match(
      error([{ cron: '0 8 * * *', duration: '10x', min: 1 }]),
      /^\[0\]\.duration: expected whole seconds from 60/,
    );
    assert.match(error([{ cron: '0 8 * * *', duration: 30, min: 1 }]), /^\[0\]\.duration/);
    assert.match(error([{ cron: '0 8 * * *', duration: '1h' }]), /^\[0\]\.min: expected an integer from 0/);
    assert.match(error([{ cron: '0 8 * * *', duration: '1h', min: 1, size: 2 }]), /^\[0\]\.size: unknown field/);
    assert.match(error([{ cron: '0 8 * * *', duration: '1h', min: 1 }, 'x']), /^\[1\]: expected a mapping/);
  });
});
