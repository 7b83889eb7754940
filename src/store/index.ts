/**
 * The store folder's public surface: the contracts and their implementations. The conformance
 * suite is imported from './conformance.js' directly, so production code never loads node:test.
 */
export { artifactDigest, assertArtifactPath, normalizeMode } from './artifacts/digest.js';
export { createLocalArtifactStore, type LocalArtifactStoreOptions } from './artifacts/local-artifact-store.js';
export {
  createNatsArtifactStore,
  type NatsArtifactStore,
  type NatsArtifactStoreOptions,
} from './artifacts/nats-artifact-store.js';
export { readArtifactTree } from './artifacts/read-tree.js';
export { assertValidBucketName, assertValidKey } from './keys.js';
export { createNatsStore, type NatsStoreOptions } from './nats/nats-store.js';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.js';
export type {
  ArtifactFile,
  ArtifactStore,
  Bucket,
  Entry,
  ReadonlyBucket,
  Store,
  WatchEvent,
  WatchOptions,
} from './types.js';
