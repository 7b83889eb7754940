import { randomBytes } from 'node:crypto';

/** Short random id with a readable prefix, e.g. `inst_3f9c2a1b7e`. */
export function newId(prefix: string, bytes = 5): string {
  return `${prefix}_${randomBytes(bytes).toString('hex')}`;
}
