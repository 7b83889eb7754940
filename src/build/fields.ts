import { parseSchedules } from '../autoscaler/schedule.js';
import { SCALE_LIMITS } from '../autoscaler/settings.js';
import { NimbusError } from '../core/errors.js';
import type { NetworkMode, RolloutSettings, RuntimeKind, ScaleConfig } from '../core/types.js';
import type { DeclaredTrigger } from '../triggers/types.js';
import { parseDurationSeconds } from './duration.js';
import { parseRolloutLayer } from './rollout-config.js';
import { splitCommand } from './shell-words.js';
import { parseTriggersField } from './triggers-field.js';

/** One source of configuration (the manifest, or the overrides), checked field by field. */
export interface ConfigLayer {
  name?: string;
  runtime?: RuntimeKind;
  handler?: string;
  command?: string[];
  env?: Record<string, string>;
  memory?: number;
  cpu?: number;
  network?: NetworkMode;
  timeout?: number;
  concurrency?: number;
  scale?: Partial<ScaleConfig>;
  snapshot?: boolean | 'required' | 'auto';
  /** `rollout:` fields given; null for `rollout: false`. */
  rollout?: Partial<RolloutSettings> | null;
  /** `triggers:` entries, shape-checked (their source fields are checked at deploy: docs/triggers.md). */
  triggers?: DeclaredTrigger[];
}

/** Where a layer came from, for messages: "nimbus.yaml:7: memory: …" or "config overrides: …". */
export interface LayerSource {
  label: string;
  lineOf?(path: readonly string[]): number | undefined;
}

export const LIMITS = {
  memory: [64, 10240],
  cpu: [0.05, 64],
  timeout: [1, 900],
  concurrency: [1, 1000],
  // Timers in Node fire at once beyond 2^31-1 ms (~24.8 days); a week is far below that.
  idleTimeout: [1, 7 * 24 * 3600],
} as const;

const TOP_FIELDS = [
  'name',
  'runtime',
  'handler',
  'command',
  'env',
  'memory',
  'cpu',
  'network',
  'timeout',
  'concurrency',
  'scale',
  'snapshot',
  'rollout',
  'triggers',
];
const SCALE_FIELDS = [
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
  'schedule',
];
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Levenshtein distance, to suggest the field someone meant ("memroy" → "memory"). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Checks one layer strictly: unknown fields and wrong types throw NIMBUS_ERR_INVALID_MANIFEST naming
 * the source, the field and the value. Converts what has a documented second form: `command` as a
 * string (split like a shell would), env values that are numbers or booleans (to strings),
 * `scale.idleTimeout` as a duration string ("5m"). A null field counts as not set.
 */
export function parseLayer(raw: unknown, source: LayerSource): ConfigLayer {
  const fail = (path: string[], message: string): never => {
    const line = source.lineOf?.(path);
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_MANIFEST',
      `${source.label}${line ? `:${line}` : ''}: ${path.join('.')}: ${message}`,
      { details: { file: source.label, field: path.join('.'), ...(line ? { line } : {}) } },
    );
  };
  const unknown = (path: string[], known: string[]) => {
    const field = path[path.length - 1]!;
    const near = known.find((k) => distance(k.toLowerCase(), field.toLowerCase()) <= 2);
    fail(path, `unknown field${near ? ` (did you mean "${near}"?)` : ''}; known fields: ${known.join(', ')}`);
  };
  const integer = (path: string[], value: unknown, min: number, max: number): number => {
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    return fail(path, `expected an integer from ${min} to ${max}, got ${show(value)}`);
  };

  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) {
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_MANIFEST',
      `${source.label}: expected a mapping of fields, got ${show(raw)}`,
      {
        details: { file: source.label },
      },
    );
  }
  const layer: ConfigLayer = {};
  for (const [field, value] of Object.entries(raw)) {
    if (!TOP_FIELDS.includes(field)) unknown([field], TOP_FIELDS);
    if (value === null || value === undefined) continue;
    switch (field) {
      case 'name':
        if (typeof value !== 'string') fail([field], `expected a string, got ${show(value)}`);
        layer.name = value as string;
        break;
      case 'runtime':
        if (value !== 'node' && value !== 'app' && value !== 'isolate')
          fail([field], `expected "node", "app" or "isolate", got ${show(value)}`);
        layer.runtime = value as RuntimeKind;
        break;
      case 'handler':
        layer.handler = parseHandler(value, (m) => fail([field], m));
        break;
      case 'command':
        layer.command = parseCommand(value, (m) => fail([field], m));
        break;
      case 'env':
        layer.env = parseEnv(value, (key, m) => fail(key === undefined ? [field] : [field, key], m));
        break;
      case 'cpu': {
        const [min, max] = LIMITS.cpu;
        if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
          fail([field], `expected a number of CPU cores from ${min} to ${max} (e.g. 0.5), got ${show(value)}`);
        // Whole milli-cores: the quota is set in microseconds per 100 ms period.
        layer.cpu = Math.round((value as number) * 1000) / 1000;
        break;
      }
      case 'network':
        if (value !== 'none' && value !== 'egress') fail([field], `expected "none" or "egress", got ${show(value)}`);
        layer.network = value as NetworkMode;
        break;
      case 'memory':
      case 'timeout':
      case 'concurrency': {
        const key = field as 'memory' | 'timeout' | 'concurrency';
        layer[key] = integer([field], value, LIMITS[key][0], LIMITS[key][1]);
        break;
      }
      case 'snapshot':
        if (value !== true && value !== false && value !== 'required' && value !== 'auto')
          fail([field], `expected true, false, "required" or "auto", got ${show(value)}`);
        layer.snapshot = value as boolean | 'required' | 'auto';
        break;
      case 'rollout':
        layer.rollout = parseRolloutLayer(value, fail, unknown);
        break;
      case 'triggers':
        layer.triggers = parseTriggersField(value, source);
        break;
      case 'scale': {
        if (!isPlainObject(value))
          fail([field], `expected a mapping with ${SCALE_FIELDS.join(', ')}, got ${show(value)}`);
        const scale: Partial<ScaleConfig> = {};
        for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
          if (!SCALE_FIELDS.includes(key)) unknown([field, key], SCALE_FIELDS);
          if (v === null || v === undefined) continue;
          if (key === 'min') scale.min = integer([field, key], v, 0, Number.MAX_SAFE_INTEGER);
          if (key === 'max') scale.max = integer([field, key], v, 1, Number.MAX_SAFE_INTEGER);
          if (key === 'idleTimeout') scale.idleTimeout = parseIdleTimeout(v, [field, key], fail);
          parseAutoscale(scale, key, v, (m) => fail([field, key], m));
        }
        layer.scale = scale;
        break;
      }
    }
  }
  return layer;
}

/** The autoscaler's fields of `scale` (docs/autoscaling.md); bounds in SCALE_LIMITS. */
function parseAutoscale(scale: Partial<ScaleConfig>, key: string, v: unknown, fail: (m: string) => never): void {
  const number = (name: keyof typeof SCALE_LIMITS, what: string): number => {
    const [min, max] = SCALE_LIMITS[name];
    if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max) return v;
    return fail(`expected ${what} from ${min} to ${max}, got ${show(v)}`);
  };
  const seconds = (name: 'window' | 'scaleDownDelay'): number => {
    const [min, max] = SCALE_LIMITS[name];
    const n = typeof v === 'string' ? parseDurationSeconds(v) : v;
    if (typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max) return n;
    return fail(`expected whole seconds from ${min} to ${max}, or a duration like "30s", "5m", got ${show(v)}`);
  };
  const integer = (name: 'maxQueue') => {
    const n = number(name, 'an integer');
    return Number.isInteger(n) ? n : fail(`expected an integer, got ${show(v)}`);
  };
  if (key === 'initial') {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`expected an integer from 0, got ${show(v)}`);
    scale.initial = v as number;
  } else if (key === 'metric') {
    if (v !== 'concurrency' && v !== 'rps') fail(`expected "concurrency" or "rps", got ${show(v)}`);
    scale.metric = v as 'concurrency' | 'rps';
  } else if (key === 'target') scale.target = number('target', 'a number');
  else if (key === 'targetUtilization') scale.targetUtilization = number('targetUtilization', 'a share (0.7 = 70%)');
  else if (key === 'window') scale.window = seconds('window');
  else if (key === 'scaleDownDelay') scale.scaleDownDelay = seconds('scaleDownDelay');
  else if (key === 'maxQueue') scale.maxQueue = integer('maxQueue');
  else if (key === 'schedule') {
    const parsed = parseSchedules(v, parseDurationSeconds);
    if ('error' in parsed) fail(parsed.error);
    else scale.schedule = parsed.schedules;
  }
}

function parseIdleTimeout(value: unknown, path: string[], fail: (path: string[], m: string) => never): number {
  const [min, max] = LIMITS.idleTimeout;
  const seconds = typeof value === 'string' ? parseDurationSeconds(value) : value;
  if (typeof seconds === 'number' && Number.isInteger(seconds) && seconds >= min && seconds <= max) return seconds;
  return fail(
    path,
    `expected whole seconds from ${min} to ${max}, or a duration like "30s", "5m", "1h", got ${show(value)}`,
  );
}

function parseHandler(value: unknown, fail: (m: string) => never): string {
  if (typeof value !== 'string' || value.trim() === '') return fail(`expected a file path, got ${show(value)}`);
  if (value.startsWith('/') || value.includes('\\')) return fail(`expected a relative path, got ${show(value)}`);
  const segments = value.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return fail(`must stay inside the source directory, got ${show(value)}`);
  return segments.join('/');
}

function parseCommand(value: unknown, fail: (m: string) => never): string[] {
  let argv: unknown[];
  if (typeof value === 'string') {
    try {
      argv = splitCommand(value);
    } catch (err) {
      return fail(`${(err as Error).message} in ${show(value)}`);
    }
  } else if (Array.isArray(value)) {
    argv = value;
  } else {
    return fail(`expected a string or a list of strings, got ${show(value)}`);
  }
  if (argv.length === 0) return fail('must name a program to run');
  if (!argv.every((a) => typeof a === 'string')) return fail(`expected a list of strings, got ${show(value)}`);
  if (argv[0] === '') return fail('the program name is empty');
  return argv as string[];
}

function parseEnv(value: unknown, fail: (key: string | undefined, m: string) => never): Record<string, string> {
  if (!isPlainObject(value)) return fail(undefined, `expected a mapping of NAME: value, got ${show(value)}`);
  const env: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!ENV_NAME_RE.test(key)) fail(key, 'not a valid environment variable name (letters, digits and _)');
    if (key === 'PORT' || key.startsWith('NIMBUS_')) fail(key, 'reserved: PORT and NIMBUS_* are set by the platform');
    if (typeof v === 'string') env[key] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') env[key] = String(v);
    else fail(key, `expected a string, got ${show(v)}`);
  }
  return env;
}
