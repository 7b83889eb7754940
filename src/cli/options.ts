import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.js';

/*
 * Strict flag parsers. Commander calls them while parsing, so a bad value stops the command with
 * exit code 2 before any file is packed or any request is sent. Each throws InvalidArgumentError,
 * which commander turns into `option '--memory <MB>' argument 'lots' is invalid. <our reason>`.
 */

/** Integers only: `Number('1e3')`, `Number(' 8')` and `parseInt('8MB')` would all let junk through. */
function integer(raw: string, what: string, min: number): number {
  if (!/^-?\d+$/.test(raw)) throw new InvalidArgumentError(`${what} must be a whole number.`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be at least ${min}.`);
  return n;
}

function decimal(raw: string, what: string, min: number): number {
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new InvalidArgumentError(`${what} must be a number.`);
  const n = Number(raw);
  if (n < min) throw new InvalidArgumentError(`${what} must be at least ${min}.`);
  return n;
}

export const parseMemory = (raw: string) => integer(raw, 'Memory (MB)', 1);
export const parseSeconds = (raw: string) => decimal(raw, 'Seconds', 0);
export const parsePositiveInt = (raw: string) => integer(raw, 'The value', 1);
export const parseNonNegativeInt = (raw: string) => integer(raw, 'The value', 0);
export const parsePort = (raw: string) => {
  const port = integer(raw, 'Port', 0);
  if (port > 65535) throw new InvalidArgumentError('Port must be at most 65535.');
  return port;
};

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `--env K=V`, repeatable: collects into an object; the value may itself contain `=`. */
export function collectEnv(raw: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = raw.indexOf('=');
  const key = eq < 0 ? raw : raw.slice(0, eq);
  if (eq < 0 || !ENV_KEY.test(key)) throw new InvalidArgumentError('Expected K=V with K a valid variable name.');
  return { ...previous, [key]: raw.slice(eq + 1) };
}

/** `--header 'K: V'`, repeatable. */
export function collectHeader(raw: string, previous: [string, string][] = []): [string, string][] {
  const colon = raw.indexOf(':');
  const key = colon < 0 ? '' : raw.slice(0, colon).trim();
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) throw new InvalidArgumentError("Expected 'Name: value'.");
  return [...previous, [key, raw.slice(colon + 1).trim()]];
}

/** Deploy flags as commander hands them over (all optional). */
export interface DeployFlags {
  name?: string;
  runtime?: string;
  handler?: string;
  command?: string;
  env?: Record<string, string>;
  memory?: number;
  timeout?: number;
  concurrency?: number;
  min?: number;
  max?: number;
  idleTimeout?: number;
  initial?: number;
  metric?: string;
  target?: number;
  targetUtilization?: number;
  /** Seconds (`--window 2m` is parsed to 120). */
  window?: number;
  scaleDownDelay?: number;
  maxQueue?: number;
  /** `--snapshot` (true), `--snapshot required`, `--no-snapshot` (false). */
  snapshot?: boolean | string;
}

/** Deploy flags that go under `scale` in the manifest shape (docs/autoscaling.md), same names. */
const SCALE_FLAGS = [
  'min',
  'max',
  'idleTimeout',
  'initial',
  'metric',
  'target',
  'targetUtilization',
  'window',
  'scaleDownDelay',
  'maxQueue',
] as const;

/** `--window 2m`, `--scale-down-delay 30`: whole seconds, or a duration in s, m or h. */
export function parseWholeSeconds(raw: string): number {
  const d = /^(\d+)(s|m|h)?$/.exec(raw);
  if (!d) throw new InvalidArgumentError('Expected whole seconds or a duration such as 30s, 2m, 1h.');
  return Number(d[1]) * { s: 1, m: 60, h: 3600 }[d[2] ?? 's']!;
}

/** `--target-utilization 0.7`: a share above 0, at most 1. */
export function parseShare(raw: string): number {
  const n = decimal(raw, 'The share', 0);
  if (n <= 0 || n > 1) throw new InvalidArgumentError('The share must be above 0 and at most 1 (0.7 = 70%).');
  return n;
}

export const parsePositiveNumber = (raw: string) => {
  const n = decimal(raw, 'The value', 0);
  if (n <= 0) throw new InvalidArgumentError('The value must be above 0.');
  return n;
};

/**
 * The `config` query parameter of a deploy: only the fields the user gave, in manifest shape, so
 * the manifest in the archive supplies the rest. Throws UsageError on contradictions (called from
 * the action, after commander has parsed each flag on its own).
 */
export function buildOverrides(flags: DeployFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of [
    'name',
    'runtime',
    'handler',
    'command',
    'env',
    'memory',
    'timeout',
    'concurrency',
    'snapshot',
  ] as const) {
    if (flags[key] !== undefined) out[key] = flags[key];
  }
  const scale: Record<string, number | string> = {};
  for (const key of SCALE_FLAGS) if (flags[key] !== undefined) scale[key] = flags[key];
  const { min, max, initial } = flags;
  if (min !== undefined && max !== undefined && min > max) {
    throw new UsageError(`--min (${min}) must not exceed --max (${max})`);
  }
  if (initial !== undefined && ((min !== undefined && initial < min) || (max !== undefined && initial > max))) {
    throw new UsageError(`--initial (${initial}) must be between --min and --max`);
  }
  if (Object.keys(scale).length > 0) out.scale = scale;
  return out;
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--log-max-age 7d`: a duration (ms, s, m, h, d) in milliseconds. */
export function parseDuration(raw: string): number {
  const d = DURATION.exec(raw);
  if (!d || Number(d[1]) <= 0) throw new InvalidArgumentError('Expected a duration such as 30m, 12h or 7d.');
  return Number(d[1]) * UNIT_MS[d[2]!]!;
}

/**
 * `--since`: an ISO time or epoch ms (what the API takes), or a duration back from now such as
 * `10m`, which the CLI turns into an ISO time.
 */
export function parseSince(raw: string, now: number): string {
  const d = DURATION.exec(raw);
  if (d) return new Date(now - Number(d[1]) * UNIT_MS[d[2]]).toISOString();
  if (/^\d+$/.test(raw)) return raw;
  if (!Number.isNaN(Date.parse(raw))) return raw;
  throw new UsageError(
    `invalid --since '${raw}': expected an ISO time, epoch milliseconds, or a duration such as 30s, 10m, 2h`,
  );
}
