import { randomFillSync } from 'node:crypto';

/**
 * Random bytes handed out from one buffer filled 4 KiB at a time: a `randomBytes` call per id
 * costs a getpid and OpenSSL's locks (3.5 µs alone here, ≈ 18 µs per call on the isolate warm
 * path, where it contends with the isolate threads), and ids are made on hot paths.
 * crypto.randomUUID batches its entropy the same way.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

/** `bytes` fresh random bytes as hex (never the same pool bytes twice). */
export function randomHex(bytes: number): string {
  if (bytes > POOL_SIZE) throw new RangeError(`randomHex: at most ${POOL_SIZE} bytes`);
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

/** Short random id with a readable prefix, e.g. `inst_3f9c2a1b7e`. */
export function newId(prefix: string, bytes = 5): string {
  return `${prefix}_${randomHex(bytes)}`;
}
