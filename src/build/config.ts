import { AUTOSCALE_DEFAULTS } from '../autoscaler/settings.js';
import { NimbusError } from '../core/errors.js';
import { type FunctionConfig, isValidFunctionName, type ScaleConfig } from '../core/types.js';
import type { SourceFile } from './archive.js';
import { parseLayer } from './fields.js';
import { readManifest } from './manifest.js';
import { resolveRollout } from './rollout-config.js';

/** Entry files looked for, in order, when `handler` is not set (then package.json `main`). */
export const HANDLER_CANDIDATES = ['index.ts', 'index.mts', 'index.js', 'index.mjs', 'index.cjs'] as const;

/** Defaults applied when neither the manifest nor the overrides set a field. */
export const CONFIG_DEFAULTS = {
  runtime: 'node',
  env: {},
  memory: 256,
  network: 'egress',
  timeout: 30,
  concurrency: 10,
  scale: { min: 0, max: 10, idleTimeout: 300 },
} as const;

const manifestError = (message: string, details: Record<string, unknown> = {}) =>
  new NimbusError('NIMBUS_ERR_INVALID_MANIFEST', message, { details });

/**
 * The function's configuration: the manifest at the root of `files` (nimbus.yaml, nimbus.yml or
 * nimbus.json), with `overrides` on top (the deploy request's `config`; overrides win, `env` is
 * merged key by key and `scale` field by field), then the defaults in CONFIG_DEFAULTS.
 *
 * The name is overrides.name, else the manifest's, else `nameHint`. `handler` (runtime node)
 * defaults to the first of HANDLER_CANDIDATES present, else package.json `main`, and must exist
 * in `files`. Throws NIMBUS_ERR_INVALID_MANIFEST naming the file and field for any bad value,
 * NIMBUS_ERR_INVALID_NAME for a missing or invalid name. Manifest reference: src/build/README.md.
 */
export function resolveConfig(
  files: readonly SourceFile[],
  overrides: Record<string, unknown>,
  nameHint?: string,
): FunctionConfig {
  const manifest = readManifest(files);
  const fromFile = manifest ? parseLayer(manifest.data, { label: manifest.file, lineOf: manifest.lineOf }) : {};
  const fromFlags = parseLayer(overrides, { label: 'config overrides' });
  const where = (field: string) =>
    fromFlags[field as keyof typeof fromFlags] !== undefined ? 'config overrides' : (manifest?.file ?? 'config');

  const name = fromFlags.name ?? fromFile.name ?? nameHint;
  if (name === undefined || name === '') {
    throw new NimbusError('NIMBUS_ERR_INVALID_NAME', 'No function name: set `name` in nimbus.yaml or pass one');
  }
  if (!isValidFunctionName(name)) {
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_NAME',
      `Invalid function name ${JSON.stringify(name)}: use 1-63 lowercase letters, digits and dashes, starting with a letter`,
      { details: { name } },
    );
  }

  const runtime = fromFlags.runtime ?? fromFile.runtime ?? CONFIG_DEFAULTS.runtime;
  const scale = { ...CONFIG_DEFAULTS.scale, ...fromFile.scale, ...fromFlags.scale };
  if (scale.min > scale.max) {
    throw manifestError(`${where('scale')}: scale: min (${scale.min}) must not exceed max (${scale.max})`, {
      field: 'scale',
    });
  }
  const concurrency = fromFlags.concurrency ?? fromFile.concurrency ?? CONFIG_DEFAULTS.concurrency;
  fillAutoscale(scale, concurrency, where('scale'));
  const config: FunctionConfig = {
    name,
    runtime,
    env: { ...fromFile.env, ...fromFlags.env },
    memory: fromFlags.memory ?? fromFile.memory ?? CONFIG_DEFAULTS.memory,
    network: fromFlags.network ?? fromFile.network ?? CONFIG_DEFAULTS.network,
    timeout: fromFlags.timeout ?? fromFile.timeout ?? CONFIG_DEFAULTS.timeout,
    concurrency,
    scale,
  };

  const rollout = resolveRollout(fromFile.rollout, fromFlags.rollout);
  if (rollout) config.rollout = rollout;

  const cpu = fromFlags.cpu ?? fromFile.cpu;
  if (cpu !== undefined) config.cpu = cpu;
  // `auto` (the default) is stored as unset: revisions made before snapshots keep their identity.
  // `false` is kept, since it now opts out of automatic snapshots.
  const snapshot = fromFlags.snapshot ?? fromFile.snapshot;
  if (snapshot !== undefined && snapshot !== 'auto') config.snapshot = snapshot;

  const handler = fromFlags.handler ?? fromFile.handler;
  const command = fromFlags.command ?? fromFile.command;
  if (runtime === 'app') {
    if (handler !== undefined) {
      throw manifestError(`${where('handler')}: handler: only used with runtime node (this is runtime app)`, {
        field: 'handler',
      });
    }
    if (command === undefined) {
      throw manifestError(
        `${manifest?.file ?? 'config'}: command: required with runtime app (the program to run; it must listen on $PORT)`,
        { field: 'command' },
      );
    }
    config.command = command;
  } else {
    if (command !== undefined) {
      throw manifestError(`${where('command')}: command: only used with runtime app (this is runtime ${runtime})`, {
        field: 'command',
      });
    }
    config.handler = findHandler(files, handler, where('handler'));
  }
  return config;
}

/**
 * The autoscaler's defaults (docs/autoscaling.md), written into the config so `nimbus get` shows
 * what is in force; `maxQueue` stays unset (the node's default applies).
 */
function fillAutoscale(scale: ScaleConfig, concurrency: number, source: string): void {
  scale.initial ??= scale.min;
  scale.metric ??= AUTOSCALE_DEFAULTS.metric;
  scale.target ??= scale.metric === 'concurrency' ? concurrency : AUTOSCALE_DEFAULTS.rpsTarget;
  scale.targetUtilization ??= AUTOSCALE_DEFAULTS.targetUtilization;
  scale.window ??= AUTOSCALE_DEFAULTS.windowSeconds;
  scale.scaleDownDelay ??= AUTOSCALE_DEFAULTS.scaleDownDelaySeconds;
  if (scale.initial < scale.min || scale.initial > scale.max) {
    throw manifestError(
      `${source}: scale: initial (${scale.initial}) must be between min (${scale.min}) and max (${scale.max})`,
      { field: 'scale.initial' },
    );
  }
  const tooHigh = scale.schedule?.findIndex((w) => w.min > scale.max) ?? -1;
  if (tooHigh >= 0) {
    throw manifestError(
      `${source}: scale: schedule[${tooHigh}].min (${scale.schedule![tooHigh]!.min}) must not exceed max (${scale.max})`,
      { field: 'scale.schedule' },
    );
  }
  if (scale.metric === 'concurrency' && scale.target > concurrency) {
    throw manifestError(
      `${source}: scale: target (${scale.target}) must not exceed concurrency (${concurrency}), the hard limit per instance`,
      { field: 'scale.target' },
    );
  }
}

function findHandler(files: readonly SourceFile[], handler: string | undefined, source: string): string {
  const paths = new Set(files.map((f) => f.path));
  if (handler !== undefined) {
    if (!paths.has(handler)) {
      throw manifestError(`${source}: handler: file ${JSON.stringify(handler)} not found in the source`, {
        field: 'handler',
        file: handler,
      });
    }
    return handler;
  }
  const found = HANDLER_CANDIDATES.find((c) => paths.has(c)) ?? packageMain(files, paths);
  if (found) return found;
  throw manifestError(
    `No handler: add one of ${HANDLER_CANDIDATES.join(', ')}, or set \`handler\` in nimbus.yaml (or \`main\` in package.json)`,
    { field: 'handler' },
  );
}

/** package.json `main`, normalised, when it names a file in the source. */
function packageMain(files: readonly SourceFile[], paths: Set<string>): string | undefined {
  const pkg = files.find((f) => f.path === 'package.json');
  if (!pkg) return undefined;
  let main: unknown;
  try {
    main = JSON.parse(pkg.content.toString('utf8')).main;
  } catch {
    return undefined; // a broken package.json is reported by the bundler, with its position
  }
  if (typeof main !== 'string') return undefined;
  const clean = main
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
  if (clean.split('/').includes('..')) return undefined;
  for (const candidate of [clean, `${clean}.js`, `${clean}/index.js`]) if (paths.has(candidate)) return candidate;
  return undefined;
}
