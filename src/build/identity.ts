import { createHash } from 'node:crypto';
import type { FunctionConfig } from '../core/types.js';

/** JSON with object keys sorted at every level and undefined fields dropped: one text per value. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sortKeys(v);
  }
  return out;
}

/**
 * A revision's identity: sha256 (hex) of `digest`, a newline, and the canonical JSON of `config`.
 * Same source tree and same resolved config give the same identity, whatever the key order or the
 * archive's timestamps; the API uses it to skip making a revision when nothing changed.
 */
export function configIdentity(digest: string, config: FunctionConfig): string {
  return createHash('sha256')
    .update(`${digest}\n${canonicalJson(config)}`)
    .digest('hex');
}
