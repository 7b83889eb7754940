import { createHash } from 'node:crypto';
import { NimbusError } from '../core/errors.js';
import type { DeclaredTrigger, TriggerFactory, TriggerPlan, TriggerSpec } from './types.js';

const ID_MAX = 63;

/**
 * The id of a manifest trigger: `FUNCTION-NAME` when the entry is named (so editing its config
 * updates it in place), else `FUNCTION-TYPE-HASH` of its config (so an unnamed entry keeps its id
 * across deploys while unchanged, and a changed one is replaced). Cut to 63 characters.
 */
export function manifestTriggerId(fn: string, declared: { name?: string; type: string }, config: unknown): string {
  const suffix =
    declared.name ?? `${declared.type}-${createHash('sha256').update(stableJson(config)).digest('hex').slice(0, 8)}`;
  const id = `${fn}-${suffix}`;
  if (id.length <= ID_MAX) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  return `${id.slice(0, ID_MAX - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}

/** JSON with sorted keys (trigger configs are flat records): equal configs, equal text. */
export function stableJson(value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return JSON.stringify(value);
  return JSON.stringify(value, Object.keys(value).sort());
}

/**
 * Checks a manifest's triggers with their factories and gives them ids. A factory's
 * `config.FIELD: why` becomes `nimbus.yaml:LINE: triggers[I].FIELD: why`, a
 * NIMBUS_ERR_INVALID_MANIFEST (400) with `details.field`; an id already used by a trigger this
 * function's manifest does not own (made through the API, or another function's) is refused the same way.
 */
export function planManifestTriggers(
  fn: string,
  declared: readonly DeclaredTrigger[],
  factories: ReadonlyMap<string, TriggerFactory>,
  existing: readonly TriggerSpec[],
): TriggerPlan {
  const specs: TriggerPlan['specs'] = [];
  for (const d of declared) {
    const fail = (field: string | undefined, why: string): never => {
      const path = `triggers[${d.index}]${field ? `.${field}` : ''}`;
      const line = d.line(field);
      throw new NimbusError('NIMBUS_ERR_INVALID_MANIFEST', `${d.label}${line ? `:${line}` : ''}: ${path}: ${why}`, {
        details: { file: d.label, field: path, ...(line ? { line } : {}) },
      });
    };
    const factory = factories.get(d.type);
    if (!factory)
      return fail('type', `expected one of ${[...factories.keys()].join(', ')}, got ${JSON.stringify(d.type)}`);
    let config: Record<string, unknown>;
    try {
      config = factory.validate(d.config);
    } catch (err) {
      if (!(err instanceof NimbusError) || err.code !== 'NIMBUS_ERR_INVALID_REQUEST') throw err;
      // Factories name fields as the API body has them (`config.topic: …`); the manifest has them flat.
      const m = /^config(?:\.([A-Za-z0-9_-]+))?: ([\s\S]*)$/.exec(err.message);
      return fail(m?.[1], m ? m[2]! : err.message);
    }
    const id = manifestTriggerId(fn, d, config);
    const taken = existing.find((t) => t.id === id && !(t.origin === 'manifest' && t.function === fn));
    if (taken)
      fail(
        d.name === undefined ? undefined : 'name',
        `the trigger id ${id} is taken by a trigger ${taken.origin === 'manifest' ? `of function ${taken.function}` : 'made through the API'}; rename this one, or remove that one (nimbus triggers rm ${id})`,
      );
    specs.push({
      id,
      type: d.type,
      function: fn,
      config,
      origin: 'manifest',
      ...(d.name !== undefined ? { name: d.name } : {}),
    });
  }
  return { function: fn, specs };
}
