/**
 * The deploy step that snapshots a node function's init (docs/snapshots.md). A blob is a derived
 * artifact of the revision: the revision's files plus `snapshot.blob`, content-addressed in the
 * artifact store like any artifact, and remembered in the `snapshots` bucket under a key of what
 * it depends on (artifact digest, Node version, snapshot guest, the env and memory the init ran
 * with), so an identical one is never built twice.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../build/index.js';
import { NimbusError } from '../core/errors.js';
import type { FunctionConfig, RevisionSnapshot } from '../core/types.js';
import { SNAPSHOT_BLOB, type SnapshotBuilder } from '../runtime/snapshot/index.js';
import type { ArtifactFile, ArtifactStore, Bucket } from '../store/types.js';

/** What the `snapshots` bucket remembers of a built blob. */
export interface SnapshotCacheEntry {
  digest: string;
  bytes: number;
  buildMs: number;
  createdAt: string;
}

export interface SnapshotStepDeps {
  builder: SnapshotBuilder;
  artifacts: ArtifactStore;
  cache: Bucket<SnapshotCacheEntry>;
}

/** The revision being deployed, as the step needs it. */
export interface SnapshotInput {
  config: FunctionConfig;
  /** The revision's artifact and its files (the snapshot artifact repeats them). */
  digest: string;
  files: ArtifactFile[];
  entry: string;
}

/** The cache key: sha256 of everything the blob depends on. */
export function snapshotKey(
  input: SnapshotInput,
  builder: Pick<SnapshotBuilder, 'nodeVersion' | 'guestVersion'>,
): string {
  const { config } = input;
  return createHash('sha256')
    .update(
      canonicalJson({
        digest: input.digest,
        entry: input.entry,
        node: builder.nodeVersion,
        guest: builder.guestVersion,
        env: config.env,
        memory: config.memory,
        network: config.network,
      }),
    )
    .digest('hex');
}

/**
 * Builds (or finds) the snapshot of a revision. A failed build answers `status: 'failed'` with the
 * reason, unless the config says `snapshot: required`: then it throws NIMBUS_ERR_SNAPSHOT_FAILED.
 */
export async function snapshotRevision(deps: SnapshotStepDeps, input: SnapshotInput): Promise<RevisionSnapshot> {
  const { builder, artifacts, cache } = deps;
  const versions = { node: builder.nodeVersion, guest: builder.guestVersion };
  const key = snapshotKey(input, builder);
  const cached = await cache.get(key);
  if (cached && (await artifacts.has(cached.value.digest))) {
    const { digest, bytes, buildMs } = cached.value;
    return { status: 'ready', digest, blob: SNAPSHOT_BLOB, ...versions, bytes, buildMs };
  }
  try {
    const artifactDir = await artifacts.localPath(input.digest);
    const { blob, buildMs } = await builder.build({
      function: input.config.name,
      artifactDir,
      entry: input.entry,
      env: input.config.env,
      memoryMb: input.config.memory,
      cpu: input.config.cpu,
      network: input.config.network,
    });
    const digest = await artifacts.put([...input.files, { path: SNAPSHOT_BLOB, mode: 0o644, content: blob }]);
    await cache.put(key, { digest, bytes: blob.length, buildMs, createdAt: new Date().toISOString() });
    return { status: 'ready', digest, blob: SNAPSHOT_BLOB, ...versions, bytes: blob.length, buildMs };
  } catch (err) {
    const error = err instanceof NimbusError ? err : new NimbusError('NIMBUS_ERR_SNAPSHOT_FAILED', String(err));
    if (input.config.snapshot === 'required') throw error;
    return { status: 'failed', error: error.message, ...versions };
  }
}
