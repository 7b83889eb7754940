import { NimbusError } from '../core/errors.js';
import type { DeclaredTrigger } from '../triggers/types.js';
import type { SourceFile } from './archive.js';
import type { LayerSource } from './fields.js';
import { readManifest } from './manifest.js';

/** A manifest trigger's `name`: part of its id (`FUNCTION-NAME`), so a short DNS-style label. */
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,39}$/;

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

/**
 * Checks the shape of a layer's `triggers:` — a list of mappings, each with a `type`, an optional
 * unique `name`, and the source's own fields flat beside them (`schedule`, `topic`, …: checked by
 * the source at deploy, see ManifestTriggers.plan). Throws NIMBUS_ERR_INVALID_MANIFEST naming
 * `triggers[I].FIELD` and the line.
 */
export function parseTriggersField(value: unknown, source: LayerSource): DeclaredTrigger[] {
  const lineOf = (path: (string | number)[]) => source.lineOf?.(['triggers', ...path.map(String)]);
  const fail = (index: number | undefined, field: string | undefined, why: string): never => {
    const path = `triggers${index === undefined ? '' : `[${index}]`}${field ? `.${field}` : ''}`;
    const line = lineOf([...(index === undefined ? [] : [index]), ...(field ? [field] : [])]);
    throw new NimbusError('NIMBUS_ERR_INVALID_MANIFEST', `${source.label}${line ? `:${line}` : ''}: ${path}: ${why}`, {
      details: { file: source.label, field: path, ...(line ? { line } : {}) },
    });
  };
  if (!Array.isArray(value))
    return fail(undefined, undefined, `expected a list of triggers ({type, name?, …}), got ${show(value)}`);
  const names = new Set<string>();
  return value.map((entry, index): DeclaredTrigger => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      return fail(
        index,
        undefined,
        `expected a mapping such as {type: cron, schedule: "0 3 * * *"}, got ${show(entry)}`,
      );
    const { type, name, function: fn, ...config } = entry as Record<string, unknown>;
    if (typeof type !== 'string' || type === '')
      return fail(index, 'type', `required: the source, e.g. cron, interval, nats, rabbitmq, mqtt, redis-streams`);
    if (fn !== undefined)
      fail(index, 'function', 'a manifest trigger invokes the function it is declared in; use the API for another');
    if (name !== undefined && name !== null) {
      if (typeof name !== 'string' || !NAME_RE.test(name))
        fail(index, 'name', `expected 1-40 lowercase letters, digits and dashes, got ${show(name)}`);
      if (names.has(name as string)) fail(index, 'name', `${show(name)} is used by an earlier trigger`);
      names.add(name as string);
    }
    // A null field counts as not set, as everywhere else in the manifest.
    for (const key of Object.keys(config)) if (config[key] === null) delete config[key];
    return {
      ...(typeof name === 'string' ? { name } : {}),
      type,
      config,
      index,
      label: source.label,
      // A missing field has no line: then the entry's.
      line: (field) => (field ? lineOf([index, field]) : undefined) ?? lineOf([index]),
    };
  });
}

/**
 * The function's declared triggers: the deploy overrides' `triggers` when given (they replace the
 * manifest's list), else the manifest's, else none — a manifest without `triggers:` declares none,
 * so a redeploy without them deletes the ones an earlier deploy made.
 */
export function resolveTriggers(files: readonly SourceFile[], overrides: Record<string, unknown>): DeclaredTrigger[] {
  // resolveConfig has checked both layers already; only `triggers` is read here.
  const given = (layer: unknown) => (layer as { triggers?: unknown } | null)?.triggers ?? undefined;
  if (given(overrides) !== undefined) return parseTriggersField(given(overrides), { label: 'config overrides' });
  const manifest = readManifest(files);
  const declared = manifest && given(manifest.data);
  if (!manifest || declared === undefined) return [];
  return parseTriggersField(declared, { label: manifest.file, lineOf: manifest.lineOf });
}
