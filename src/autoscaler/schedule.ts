import { Cron } from 'croner';
import type { ScaleSchedule } from '../core/types.js';

/** Bounds of a scheduled-warming window's duration, in seconds: a minute to a week. */
export const SCHEDULE_DURATION_LIMITS = [60, 7 * 24 * 3600] as const;

/** Croner's parse of each schedule, cached: the autoscaler asks every second. */
const compiled = new WeakMap<ScaleSchedule, Cron>();

function cronOf(s: ScaleSchedule): Cron {
  let cron = compiled.get(s);
  if (!cron) {
    cron = new Cron(s.cron, { timezone: s.timezone, paused: true });
    compiled.set(s, cron);
  }
  return cron;
}

/** A window open at some moment: the minimum it asks for and when it closes (epoch ms). */
export interface OpenWindow {
  min: number;
  until: number;
}

/**
 * The scheduled window with the highest `min` that is open at `now`, or undefined. A window is
 * open from a cron occurrence (inclusive) for `duration` seconds (exclusive). Only the latest
 * occurrence at or before `now` matters: an earlier one opened earlier and so closes earlier.
 * Pure: time comes only from `now`.
 */
export function openWindow(schedules: readonly ScaleSchedule[] | undefined, now: number): OpenWindow | undefined {
  let best: OpenWindow | undefined;
  for (const s of schedules ?? []) {
    // previousRuns is strictly before its reference: +1 ms makes an occurrence at `now` count.
    const [start] = cronOf(s).previousRuns(1, new Date(now + 1));
    if (!start) continue;
    const until = start.getTime() + s.duration * 1000;
    if (until <= now) continue;
    if (!best || s.min > best.min || (s.min === best.min && until > best.until)) best = { min: s.min, until };
  }
  return best;
}

/** The minimum scheduled warming asks for at `now`: the highest `min` of the open windows, 0 when none is open. */
export function effectiveMin(schedules: readonly ScaleSchedule[] | undefined, now: number): number {
  return openWindow(schedules, now)?.min ?? 0;
}

/**
 * Checks a manifest's `scale.schedule`: the parsed list, or one message naming the bad entry and
 * field (`[1].cron: …`). Durations may be seconds or strings like "10h", converted by `seconds`.
 */
export function parseSchedules(
  raw: unknown,
  seconds: (v: string) => number | undefined,
): { schedules: ScaleSchedule[] } | { error: string } {
  if (!Array.isArray(raw))
    return { error: 'expected a list of windows like [{ cron: "0 8 * * 1-5", duration: "10h", min: 3 }]' };
  const schedules: ScaleSchedule[] = [];
  const known = ['cron', 'timezone', 'duration', 'min'];
  for (const [i, item] of raw.entries()) {
    const at = (field?: string) => `[${i}]${field ? `.${field}` : ''}`;
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      return { error: `${at()}: expected a mapping with cron, duration, min and optionally timezone` };
    const { cron, timezone, duration, min, ...rest } = item as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) return { error: `${at(extra)}: unknown field; known fields: ${known.join(', ')}` };
    if (typeof cron !== 'string' || cron.trim() === '')
      return { error: `${at('cron')}: expected a cron expression such as "0 8 * * 1-5"` };
    if (timezone !== undefined && typeof timezone !== 'string')
      return { error: `${at('timezone')}: expected an IANA time zone such as "Europe/Paris"` };
    if (timezone !== undefined && !validTimeZone(timezone))
      return {
        error: `${at('timezone')}: unknown time zone ${JSON.stringify(timezone)} (expected an IANA name such as "Europe/Paris")`,
      };
    try {
      new Cron(cron, { timezone: timezone as string | undefined, paused: true }).nextRun();
    } catch (err) {
      return { error: `${at('cron')}: invalid cron expression ${JSON.stringify(cron)}: ${(err as Error).message}` };
    }
    const [lo, hi] = SCHEDULE_DURATION_LIMITS;
    const d = typeof duration === 'string' ? seconds(duration) : duration;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < lo || d > hi)
      return {
        error: `${at('duration')}: expected whole seconds from ${lo} to ${hi}, or a duration like "30m", "10h"`,
      };
    if (typeof min !== 'number' || !Number.isInteger(min) || min < 0)
      return { error: `${at('min')}: expected an integer from 0` };
    schedules.push({ cron, ...(timezone !== undefined ? { timezone } : {}), duration: d, min });
  }
  return { schedules };
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
