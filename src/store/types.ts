/**
 * The Store contract, after nats.js's KV: a read-only view (get / list / watch) and a read-write
 * bucket on top (create / compare-and-swap update / delete). Values are JSON-serialisable data.
 * The embedded backend is SQLite; a NATS JetStream KV backend implements the same contract for
 * clusters. Every backend must pass `runStoreConformance` (store/conformance.ts).
 */

export interface Entry<T> {
  key: string;
  value: T;
  /**
   * Positive integer, strictly increasing with every write to the bucket (like a JetStream stream
   * sequence). A key's revision changes on every update; compare-and-swap uses it.
   */
  revision: number;
}

export type WatchEvent<T> = { type: 'put'; entry: Entry<T> } | { type: 'delete'; key: string; revision: number };

export interface WatchOptions {
  /** Only keys starting with this prefix. */
  prefix?: string;
  /** Stop the watch: the iterator ends. */
  signal?: AbortSignal;
}

/** Read side of a bucket. */
export interface ReadonlyBucket<T> {
  /** The entry, or undefined when the key does not exist. */
  get(key: string): Promise<Entry<T> | undefined>;
  /** Entries whose key starts with `prefix` (all when omitted), sorted by key. */
  list(prefix?: string): Promise<Entry<T>[]>;
  /**
   * Changes after the call, in revision order, until `signal` aborts. Watchers never see an event
   * twice and never miss one that happened after `watch` returned.
   */
  watch(options?: WatchOptions): AsyncIterable<WatchEvent<T>>;
}

/** Read-write bucket. Keys: `[A-Za-z0-9_=./-]+`, at most 255 characters (JetStream KV's rules). */
export interface Bucket<T> extends ReadonlyBucket<T> {
  /** Creates `key`; throws NimbusError NIMBUS_ERR_CONFLICT when it exists. Returns the new revision. */
  create(key: string, value: T): Promise<number>;
  /**
   * Replaces `key` only if its current revision is `expectedRevision`; otherwise throws
   * NIMBUS_ERR_CONFLICT (also when the key does not exist). Returns the new revision.
   */
  update(key: string, value: T, expectedRevision: number): Promise<number>;
  /** Creates or replaces without a check. Returns the new revision. */
  put(key: string, value: T): Promise<number>;
  /**
   * Deletes `key`. With `expectedRevision`, only if it matches (NIMBUS_ERR_CONFLICT otherwise).
   * Deleting a missing key without `expectedRevision` is not an error (idempotent).
   */
  delete(key: string, expectedRevision?: number): Promise<void>;
}

/** A backend: a set of named buckets. */
export interface Store {
  bucket<T>(name: string): Bucket<T>;
  close(): Promise<void>;
}

/**
 * Immutable, content-addressed blobs of built code. An artifact is a directory tree; its digest is
 * the sha256 over its sorted (path, mode, content) entries, so the same tree always has the same
 * digest whatever the upload's timestamps.
 */
export interface ArtifactStore {
  /** Stores the files (paths relative, `/`-separated) and returns the digest. Idempotent. */
  put(files: ArtifactFile[]): Promise<string>;
  has(digest: string): Promise<boolean>;
  /**
   * A local directory holding the artifact's files, read-only by convention (process runtimes
   * run code from it). Throws NIMBUS_ERR_REVISION_NOT_FOUND when absent.
   */
  localPath(digest: string): Promise<string>;
  delete(digest: string): Promise<void>;
  /**
   * Optional: every stored digest with when it was stored (epoch ms), for the sweep of
   * unreferenced artifacts (src/api/artifact-gc.ts).
   */
  list?(): Promise<{ digest: string; storedAt: number }[]>;
}

export interface ArtifactFile {
  path: string;
  /** Unix permission bits; only the executable bit is kept (0o755 or 0o644). */
  mode: number;
  content: Buffer;
}
