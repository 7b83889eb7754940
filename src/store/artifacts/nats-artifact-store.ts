import { connect, type NatsConnection, type ObjectStore } from 'nats';
import { NimbusError } from '../../core/errors.js';
import type { ArtifactFile, ArtifactStore } from '../types.js';
import { DIGEST_RE, digestNormalized, normalizeFiles } from './digest.js';
import { createLocalArtifactStore } from './local-artifact-store.js';

export interface NatsArtifactStoreOptions {
  /** NATS server with JetStream, e.g. `nats://127.0.0.1:4222`. */
  url: string;
  /** The JetStream object store bucket. Default `nimbus_artifacts`. */
  bucket?: string;
  /** Where this node keeps the artifacts it runs (a local artifact store: plain directories). */
  cacheDir: string;
  /** Object store storage on the server. Default `file`. */
  storage?: 'file' | 'memory';
}

export interface NatsArtifactStore extends ArtifactStore {
  list(): Promise<{ digest: string; storedAt: number }[]>;
  close(): Promise<void>;
}

/**
 * Artifacts for nodes that share them: each one is an object in a JetStream object store, named
 * by its digest, holding the tree packed (`packTree`); a node unpacks it into its local artifact
 * store (the cache) the first time it needs the directory. The digest is checked again when
 * unpacking, so a node only ever runs the tree the digest names. Objects are immutable like the
 * digests that name them: a put of a stored tree writes nothing.
 */
export async function createNatsArtifactStore(options: NatsArtifactStoreOptions): Promise<NatsArtifactStore> {
  const nc: NatsConnection = await connect({ servers: options.url, name: 'nimbus-artifacts' });
  let objects: ObjectStore;
  try {
    objects = await nc
      .jetstream()
      .views.os(options.bucket ?? 'nimbus_artifacts', { storage: (options.storage ?? 'file') as never });
  } catch (err) {
    await nc.close();
    throw err;
  }
  const cache = createLocalArtifactStore({ dir: options.cacheDir });
  // A deleted object still has an info (marked deleted) until the server purges it.
  const stored = async (digest: string) => {
    if (!DIGEST_RE.test(digest)) return false;
    const info = await objects.info(digest);
    return info !== null && !info.deleted;
  };

  return {
    async put(files) {
      const tree = normalizeFiles(files);
      const digest = digestNormalized(tree);
      if (!(await stored(digest))) await objects.putBlob({ name: digest }, packTree(tree));
      await cache.put(tree);
      return digest;
    },
    async has(digest) {
      return (await cache.has(digest)) || (await stored(digest));
    },
    async localPath(digest) {
      if (await cache.has(digest)) return cache.localPath(digest);
      const packed = DIGEST_RE.test(digest) ? await objects.getBlob(digest) : null;
      if (!packed)
        throw new NimbusError('NIMBUS_ERR_REVISION_NOT_FOUND', `Artifact not found: sha256:${digest}`, {
          details: { digest },
        });
      const unpacked = await cache.put(unpackTree(packed, digest));
      if (unpacked !== digest)
        throw new NimbusError(
          'NIMBUS_ERR_INTERNAL',
          `Artifact sha256:${digest} on the server holds sha256:${unpacked}`,
        );
      return cache.localPath(digest);
    },
    async delete(digest) {
      if (DIGEST_RE.test(digest)) await objects.delete(digest).catch(() => {});
      await cache.delete(digest);
    },
    async list() {
      return (await objects.list())
        .filter((o) => !o.deleted && DIGEST_RE.test(o.name))
        .map((o) => ({ digest: o.name, storedAt: new Date(o.mtime).getTime() }));
    },
    async close() {
      await nc.drain().catch(() => {});
    },
  };
}

/**
 * One artifact as bytes: a 4-byte big-endian length, a JSON index `[[path, mode, size], …]`, then
 * every file's content in index order. Trees are small (a bundle and a few files), so one blob.
 */
export function packTree(files: readonly ArtifactFile[]): Uint8Array {
  const index = Buffer.from(JSON.stringify(files.map((f) => [f.path, f.mode, f.content.length])));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(index.length);
  return Buffer.concat([head, index, ...files.map((f) => f.content)]);
}

/** The files of a packed artifact; a blob that is not one is an error naming the digest. */
export function unpackTree(packed: Uint8Array, digest: string): ArtifactFile[] {
  const bad = () =>
    new NimbusError('NIMBUS_ERR_INTERNAL', `Artifact sha256:${digest} on the server is not a packed tree`);
  const buf = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  if (buf.length < 4) throw bad();
  const indexEnd = 4 + buf.readUInt32BE(0);
  let index: [string, number, number][];
  try {
    index = JSON.parse(buf.subarray(4, indexEnd).toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(index)) throw bad();
  let at = indexEnd;
  const files = index.map(([path, mode, size]) => {
    const content = buf.subarray(at, at + size);
    at += size;
    if (content.length !== size) throw bad();
    return { path, mode, content: Buffer.from(content) };
  });
  if (at !== buf.length) throw bad();
  return files;
}
