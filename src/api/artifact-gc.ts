/**
 * Garbage collection of artifacts and what is derived from them (docs/snapshots.md, "Disk"):
 * a deleted function's artifacts, snapshot blobs (derived artifacts) and CRIU images go once no
 * revision of any function references them. Artifacts are content-addressed, so two functions
 * (or two revisions) may share one: a digest is deleted only when no revision left names it.
 *
 * Safety: the caller collects a deleted function's files only after its instances have stopped
 * (instances bind their artifact directory read-only; removing a bound directory under a running
 * instance would leave it without its code). Deploys put their artifact under the same lock as a
 * collection and hold the digest until their revision is written, so a collection never deletes
 * an artifact a deploy in progress is about to reference.
 */
import type { RevisionRecord } from '../core/types.js';
import { checkpointKey } from '../runtime/criu/key.js';
import type { ArtifactStore, Bucket, ReadonlyBucket } from '../store/types.js';
import type { SnapshotCacheEntry } from './snapshot-step.js';

export interface ArtifactGcDeps {
  artifacts: ArtifactStore;
  revisions: ReadonlyBucket<RevisionRecord>;
  /** The snapshot cache (snapshot-step.ts): entries naming a deleted blob are dropped. */
  cache: Bucket<SnapshotCacheEntry>;
  /** Removes the CRIU image kept under a checkpoint key (runtime/criu), when there is a CRIU runtime. */
  discardCheckpoint?(key: string): Promise<void>;
  /** The keys of the CRIU images on disk, for `sweep`. */
  listCheckpoints?(): Promise<string[]>;
}

/** What one collection removed. */
export interface GcResult {
  artifacts: string[];
  checkpoints: string[];
}

/**
 * Deletes unreferenced artifacts. `hold` is for deploys: it runs `put` under the collection lock
 * and keeps the digest alive until `release`. Collections run one at a time.
 */
export interface ArtifactGc {
  hold(put: () => Promise<string>): Promise<{ digest: string; release(): void }>;
  /** Collects what these (deleted) revisions referenced, where nothing else references it. */
  collectRevisions(revisions: RevisionRecord[]): Promise<GcResult>;
  /** Collects these artifact digests where nothing references them (a replaced or orphaned blob). */
  collect(digests: string[]): Promise<GcResult>;
  /**
   * Collects every stored artifact no revision references and that is older than `minAgeMs`
   * (a deploy's snapshot build puts its blob before the revision names it), and every CRIU image
   * no revision uses: what deletes before collection existed, or a node killed mid-way, left.
   */
  sweep(minAgeMs: number, now?: number): Promise<GcResult>;
}

/** Every artifact digest a revision references: its own and its snapshot's. */
export function digestsOf(rev: RevisionRecord): string[] {
  return rev.snapshot?.status === 'ready' ? [rev.digest, rev.snapshot.digest] : [rev.digest];
}

export function createArtifactGc(deps: ArtifactGcDeps): ArtifactGc {
  let lock: Promise<unknown> = Promise.resolve();
  const held = new Map<string, number>();
  const locked = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = lock.catch(() => {}).then(fn);
    lock = next;
    return next;
  };

  const run = (digests: string[], checkpoints: string[] | 'all', minAge?: { ms: number; now: number }) =>
    locked(async (): Promise<GcResult> => {
      const candidates = minAge
        ? ((await deps.artifacts.list?.()) ?? [])
            .filter((a) => minAge.now - a.storedAt >= minAge.ms)
            .map((a) => a.digest)
        : digests;
      const images = checkpoints === 'all' ? ((await deps.listCheckpoints?.()) ?? []) : checkpoints;
      const live = (await deps.revisions.list()).map((e) => e.value);
      const referenced = new Set(live.flatMap(digestsOf));
      const liveKeys = new Set(live.map((r) => checkpointKey(r)).filter((k) => k !== undefined));
      const result: GcResult = { artifacts: [], checkpoints: [] };
      for (const digest of new Set(candidates)) {
        if (referenced.has(digest) || held.has(digest)) continue;
        await deps.artifacts.delete(digest);
        result.artifacts.push(digest);
      }
      if (result.artifacts.length > 0) {
        const gone = new Set(result.artifacts);
        for (const { key, value } of await deps.cache.list()) if (gone.has(value.digest)) await deps.cache.delete(key);
      }
      if (deps.discardCheckpoint)
        for (const key of new Set(images)) {
          if (liveKeys.has(key)) continue;
          await deps.discardCheckpoint(key);
          result.checkpoints.push(key);
        }
      return result;
    });

  return {
    hold: (put) =>
      locked(async () => {
        const digest = await put();
        held.set(digest, (held.get(digest) ?? 0) + 1);
        let released = false;
        return {
          digest,
          release() {
            if (released) return;
            released = true;
            const n = (held.get(digest) ?? 1) - 1;
            if (n > 0) held.set(digest, n);
            else held.delete(digest);
          },
        };
      }),
    collectRevisions: (revisions) =>
      run(
        revisions.flatMap(digestsOf),
        revisions.map((r) => checkpointKey(r)).filter((k): k is string => k !== undefined),
      ),
    collect: (digests) => run(digests, []),
    sweep: (minAgeMs, now = Date.now()) => run([], 'all', { ms: minAgeMs, now }),
  };
}
