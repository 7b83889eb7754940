import { NimbusError } from '../core/errors.js';

// JetStream KV's own rules (nats.js kv validateKey / validateBucket), applied by every backend so a
// key accepted by SQLite is also accepted by JetStream: keys become NATS subject tokens, hence no
// leading/trailing dot and no empty token (`..`).
const KEY_RE = /^[A-Za-z0-9_=./-]+$/;
const BUCKET_RE = /^[A-Za-z0-9_-]+$/;
const MAX_KEY = 255;

/** Throws NIMBUS_ERR_INVALID_REQUEST unless `key` is a valid bucket key (see `Bucket`). */
export function assertValidKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY || !KEY_RE.test(key)) {
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_REQUEST',
      `Invalid store key: ${JSON.stringify(key)} (use 1-${MAX_KEY} characters from A-Z a-z 0-9 _ = . / -)`,
    );
  }
  if (key.startsWith('.') || key.endsWith('.') || key.includes('..')) {
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_REQUEST',
      `Invalid store key: ${JSON.stringify(key)} (no leading, trailing or doubled dots)`,
    );
  }
}

/** Throws NIMBUS_ERR_INVALID_REQUEST unless `name` is a valid bucket name (`[A-Za-z0-9_-]+`). */
export function assertValidBucketName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_KEY || !BUCKET_RE.test(name)) {
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_REQUEST',
      `Invalid bucket name: ${JSON.stringify(name)} (use letters, digits, _ and -)`,
    );
  }
}

/** Serialises a value for storage; throws NIMBUS_ERR_INVALID_REQUEST when it is not JSON data. */
export function encodeValue(key: string, value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `Value of ${key} is not JSON-serialisable: ${String(err)}`, {
      cause: err,
    });
  }
  if (json === undefined) {
    throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `Value of ${key} is not JSON-serialisable: ${typeof value}`);
  }
  return json;
}
