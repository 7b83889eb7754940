import { ROLLOUT_DEFAULTS } from '../core/traffic.js';
import type { RolloutSettings } from '../core/types.js';
import { parseDurationSeconds } from './duration.js';

export const ROLLOUT_FIELDS = ['steps', 'interval', 'maxErrorRateIncrease', 'maxP95Ratio', 'p95FloorMs', 'minRequests'];

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

/**
 * The manifest's `rollout:` block, checked strictly: `true` (all defaults), `false` (none) or a
 * mapping of ROLLOUT_FIELDS. `fail(path, message)` throws the manifest error; `unknown(path)`
 * the unknown-field one. Returns the fields given (`{}` for true), or null for false.
 */
export function parseRolloutLayer(
  value: unknown,
  fail: (path: string[], message: string) => never,
  unknown: (path: string[], known: string[]) => void,
): Partial<RolloutSettings> | null {
  if (value === true) return {};
  if (value === false) return null;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return fail(['rollout'], `expected true, false or a mapping with ${ROLLOUT_FIELDS.join(', ')}, got ${show(value)}`);
  const out: Partial<RolloutSettings> = {};
  const number = (key: string, v: unknown, min: number, max: number, integer = false): number => {
    if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!integer || Number.isInteger(v)))
      return v;
    return fail(
      ['rollout', key],
      `expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${show(v)}`,
    );
  };
  for (const [key, v] of Object.entries(value)) {
    if (!ROLLOUT_FIELDS.includes(key)) unknown(['rollout', key], ROLLOUT_FIELDS);
    if (v === null || v === undefined) continue;
    switch (key) {
      case 'steps': {
        const ok =
          Array.isArray(v) &&
          v.length > 0 &&
          v.every((s, i) => Number.isInteger(s) && s >= 1 && s <= 100 && (i === 0 || s > v[i - 1]));
        if (!ok)
          fail(
            ['rollout', key],
            `expected increasing whole percents from 1 to 100, e.g. [5, 25, 50, 100], got ${show(v)}`,
          );
        out.steps = v as number[];
        break;
      }
      case 'interval': {
        // Seconds (decimals allowed, for tests) or a duration such as "30s", "5m".
        const seconds = typeof v === 'string' ? parseDurationSeconds(v) : v;
        out.interval = number(key, seconds ?? v, 0.1, 24 * 3600);
        break;
      }
      case 'maxErrorRateIncrease':
        out.maxErrorRateIncrease = number(key, v, 0, 100);
        break;
      case 'maxP95Ratio':
        out.maxP95Ratio = number(key, v, 1, 1000);
        break;
      case 'p95FloorMs':
        out.p95FloorMs = number(key, v, 0, 3_600_000);
        break;
      case 'minRequests':
        out.minRequests = number(key, v, 1, 1_000_000, true);
        break;
    }
  }
  return out;
}

/** Layers merged field by field over the defaults; undefined when no layer asks for a rollout (or the top one says false). */
export function resolveRollout(
  ...layers: (Partial<RolloutSettings> | null | undefined)[]
): RolloutSettings | undefined {
  const given = layers.filter((l) => l !== undefined);
  if (given.length === 0 || given[given.length - 1] === null) return undefined;
  return Object.assign({}, ROLLOUT_DEFAULTS, ...given.filter((l) => l !== null));
}
