import { NimbusError } from '../core/errors.js';

/** One config field of a source: its kind, and whether it must be given. */
export interface FieldRule {
  kind: 'string' | 'integer' | 'boolean';
  required?: boolean;
  /** For integers: the smallest and largest allowed. */
  min?: number;
  max?: number;
  /** For strings: URL schemes accepted (e.g. `['amqp:', 'amqps:']`). */
  schemes?: string[];
  /** Shown in the message of a missing field, e.g. `"orders"`. */
  example?: string;
}

/**
 * Checks a trigger config against `rules`: no unknown fields, each of the right kind and range,
 * required ones present. Throws NIMBUS_ERR_INVALID_REQUEST (a 400) naming the field; returns
 * `defaults` overlaid with the config.
 */
export function checkConfig(
  type: string,
  config: Record<string, unknown>,
  rules: Record<string, FieldRule>,
  defaults: Record<string, unknown>,
): Record<string, unknown> {
  const bad = (why: string) => new NimbusError('NIMBUS_ERR_INVALID_REQUEST', why);
  const names = Object.keys(rules);
  for (const key of Object.keys(config))
    if (!names.includes(key)) throw bad(`config: unknown field ${key} (${type} takes ${names.join(', ')})`);
  for (const [key, rule] of Object.entries(rules)) {
    const value = config[key];
    if (value === undefined || value === null) {
      if (rule.required) throw bad(`config.${key}: required${rule.example ? ` (e.g. ${rule.example})` : ''}`);
      continue;
    }
    if (rule.kind === 'string') {
      if (typeof value !== 'string' || value === '') throw bad(`config.${key}: expected a non-empty string`);
      if (rule.schemes) {
        let protocol = '';
        try {
          protocol = new URL(value).protocol;
        } catch {
          // reported below
        }
        if (!rule.schemes.includes(protocol))
          throw bad(
            `config.${key}: expected a ${rule.schemes.map((s) => `${s}//`).join(' or ')} URL, got ${JSON.stringify(value)}`,
          );
      }
    } else if (rule.kind === 'integer') {
      const lo = rule.min ?? Number.MIN_SAFE_INTEGER;
      const hi = rule.max ?? Number.MAX_SAFE_INTEGER;
      if (!Number.isInteger(value) || (value as number) < lo || (value as number) > hi)
        throw bad(`config.${key}: expected a whole number from ${lo} to ${hi}`);
    } else if (typeof value !== 'boolean') throw bad(`config.${key}: expected true or false`);
  }
  return { ...defaults, ...config };
}
