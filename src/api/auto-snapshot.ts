/**
 * Automatic snapshots (`snapshot: auto`, the default for node functions; docs/snapshots.md).
 * Instances report how long their init took on the readiness line; when a revision's measured
 * init exceeds the node's threshold, its V8 snapshot is built in the background, by the same
 * sandboxed builder as a deploy-time one, and later cold starts restore from it. The outcome is
 * written into the revision record (`snapshot` with `auto: { initMs, thresholdMs }`), so
 * `nimbus get` says why a revision has a snapshot or not.
 *
 * The same path rebuilds a `snapshot: true` blob that was made for another Node version (after a
 * node upgrade the old blob cannot load): the new blob replaces it and the old one is collected.
 */
import type { AutoSnapshotCause, RevisionRecord, RevisionSnapshot } from '../core/types.js';
import { readArtifactTree } from '../store/artifacts/read-tree.js';
import type { Bucket } from '../store/types.js';
import { type SnapshotStepDeps, snapshotRevision } from './snapshot-step.js';

/** The default init time above which an `auto` revision gets a snapshot. */
export const AUTO_SNAPSHOT_THRESHOLD_MS = 250;

export interface AutoSnapshotOptions {
  deps: SnapshotStepDeps;
  revisions: Bucket<RevisionRecord>;
  /** Init time (ms) above which a snapshot is built. Default AUTO_SNAPSHOT_THRESHOLD_MS. */
  thresholdMs?: number;
  /** A revision's snapshot is ready: later starts of it should restore from `artifactDir`. */
  onReady(revision: RevisionRecord, artifactDir: string): void;
  /** Derived artifacts that nothing may reference any more (a replaced blob, a deleted function's build). */
  collect(digests: string[]): Promise<void>;
  /** A line for the node's log (why a build failed, …). */
  log?(line: string): void;
}

/**
 * Decides and runs automatic snapshot builds. `report` never throws and never waits for a build;
 * builds run one at a time (they compete with instances for CPU).
 */
export interface AutoSnapshots {
  readonly thresholdMs: number;
  /** An instance of `function/revision` became ready after an init of `initMs`. */
  report(fn: string, revision: string, initMs: number): void;
  /** Resolves when every decision and build started so far is done (tests, shutdown). */
  settled(): Promise<void>;
}

export function createAutoSnapshots(options: AutoSnapshotOptions): AutoSnapshots {
  const thresholdMs = options.thresholdMs ?? AUTO_SNAPSHOT_THRESHOLD_MS;
  const { deps, revisions } = options;
  const busy = new Set<string>();
  let queue: Promise<void> = Promise.resolve();
  const log = (line: string) => options.log?.(line);

  /** What to do for a revision after a start: nothing, record a fast init, or build. */
  const decide = (rev: RevisionRecord, initMs: number): 'none' | 'skip' | 'build' => {
    const { config } = rev;
    if (config.runtime !== 'node' || !rev.entry || config.snapshot === false) return 'none';
    const snap = rev.snapshot;
    const current = snap !== undefined && snap.node === deps.builder.nodeVersion;
    if (config.snapshot !== undefined)
      // true / required: built at deploy; rebuilt here only when made by another Node.
      return snap && !current ? 'build' : 'none';
    if (current && snap.status !== 'skipped' && snap.status !== 'building') return 'none';
    if (initMs > thresholdMs) return 'build';
    return current && snap.status === 'skipped' ? 'none' : 'skip';
  };

  /** Writes the revision's snapshot field, unless the revision is gone; answers the record written. */
  const write = async (key: string, snapshot: RevisionSnapshot): Promise<RevisionRecord | undefined> => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await revisions.get(key);
      if (!entry) return undefined;
      const next = { ...entry.value, snapshot };
      try {
        await revisions.update(key, next, entry.revision);
        return next;
      } catch {
        // Changed meanwhile: read again.
      }
    }
    return undefined;
  };

  const build = async (key: string, rev: RevisionRecord, auto: AutoSnapshotCause): Promise<void> => {
    const versions = { node: deps.builder.nodeVersion, guest: deps.builder.guestVersion };
    const old = rev.snapshot?.status === 'ready' ? rev.snapshot.digest : undefined;
    const isAuto = rev.config.snapshot === undefined;
    if (isAuto) await write(key, { status: 'building', ...versions, auto });
    const dir = await deps.artifacts.localPath(rev.digest);
    const files = await readArtifactTree(dir);
    // Never `required` here: the revision exists already, a failure only leaves it without a blob.
    const config = { ...rev.config, snapshot: true as const };
    const made = await snapshotRevision(deps, { config, digest: rev.digest, files, entry: rev.entry! });
    const snapshot: RevisionSnapshot = isAuto ? { ...made, auto } : made;
    // Found before the record says ready, so the plan follows the record without a gap.
    const blobDir = made.status === 'ready' ? await deps.artifacts.localPath(made.digest) : undefined;
    const written = await write(key, snapshot);
    if (made.status === 'failed') log(`automatic snapshot of ${key} failed: ${made.error}`);
    if (!written) {
      // Deleted while building: the new blob belongs to nobody.
      if (made.status === 'ready') await options.collect([made.digest]);
      return;
    }
    if (made.status === 'ready' && blobDir) {
      options.onReady(written, blobDir);
      if (old && old !== made.digest) await options.collect([old]);
    }
  };

  const handle = async (fn: string, revision: string, initMs: number): Promise<void> => {
    const key = `${fn}/${revision}`;
    // One decision per revision at a time: a burst of cold starts makes one build.
    if (busy.has(key)) return;
    busy.add(key);
    try {
      const rev = (await revisions.get(key))?.value;
      if (!rev) return;
      const what = decide(rev, initMs);
      if (what === 'none') return;
      const auto = { initMs, thresholdMs };
      if (what === 'skip') {
        const versions = { node: deps.builder.nodeVersion, guest: deps.builder.guestVersion };
        const written = await write(key, { status: 'skipped', ...versions, auto });
        // A blob of another Node that a fast init no longer warrants rebuilding: it goes.
        if (written && rev.snapshot?.status === 'ready') await options.collect([rev.snapshot.digest]);
        return;
      }
      const job = queue.then(() => build(key, rev, auto));
      queue = job.catch((err) => log(`automatic snapshot of ${key} failed: ${(err as Error).message}`));
      await queue;
    } finally {
      busy.delete(key);
    }
  };

  let pending: Promise<unknown>[] = [];
  return {
    thresholdMs,
    report(fn, revision, initMs) {
      const p = handle(fn, revision, initMs).catch((err) =>
        log(`automatic snapshot of ${fn}/${revision}: ${(err as Error).message}`),
      );
      pending.push(p);
      void p.finally(() => {
        pending = pending.filter((x) => x !== p);
      });
    },
    async settled() {
      while (pending.length > 0) await Promise.all(pending);
    },
  };
}
