import { buildArtifact, configIdentity, resolveConfig, resolveTriggers, unpackArchive } from '../build/index.js';
import { NimbusError } from '../core/errors.js';
import { effectiveTraffic } from '../core/traffic.js';
import type { FunctionConfig, FunctionRecord, RevisionRecord, RevisionSnapshot } from '../core/types.js';
import { isValidFunctionName } from '../core/types.js';
import type { EndedInstanceInfo, InstanceInfo } from '../instances/types.js';
import type { ReleasePolicy, RolloutRecord } from '../rollout/index.js';
import type { SnapshotBuilder } from '../runtime/snapshot/index.js';
import type { ArtifactFile, ArtifactStore, Bucket, Store } from '../store/types.js';
import type { ManifestTriggers, TriggerChanges } from '../triggers/types.js';
import { type ArtifactGc, createArtifactGc, type GcResult } from './artifact-gc.js';
import { type AutoSnapshots, createAutoSnapshots } from './auto-snapshot.js';
import { type SnapshotCacheEntry, type SnapshotStepDeps, snapshotRevision } from './snapshot-step.js';

export interface DeployInput {
  /** gzip-compressed tar of the source directory. */
  archive: Buffer;
  /** Manifest overrides (CLI flags). */
  overrides: Record<string, unknown>;
  /** Name to use when neither overrides nor manifest give one. */
  nameHint?: string;
  /** Release as an automated canary (true), not (false), or as the revision's `rollout:` says (unset). */
  canary?: boolean;
}

export interface DeployResult {
  created: boolean;
  revision: RevisionRecord;
  /** The canary rollout this deploy started. */
  rollout?: RolloutRecord;
  /** The new revision's share of the traffic now, in percent (0 when traffic is pinned elsewhere). */
  percent?: number;
  /** Manifest triggers this deploy created, updated or deleted (ids; set when any changed). */
  triggers?: TriggerChanges;
}

/** What the control plane needs from the data plane, injected by the composition root. */
export interface ServiceHooks {
  /** A function's routing changed (deployed or removed); resolves once traffic follows. */
  onChange(name: string): Promise<void>;
  instances(name: string): InstanceInfo[];
  /** Recently ended instances of a function, newest first. */
  ended(name: string): EndedInstanceInfo[];
  /** The start error of a revision that is crash-looping, if any. */
  startError(name: string, revision: string): string | undefined;
  /** A function was deleted: forget its logs. */
  onDelete?(name: string): void;
  /** How new revisions get traffic (the rollout controller); without it, `latest` follows them at once. */
  release?: ReleasePolicy;
  /** The manifest's `triggers:` (checked before a deploy is recorded, applied after; removed with the function). */
  triggers?: ManifestTriggers;
  /**
   * Resolves once every instance of a deleted function has stopped (after `onChange`), so its
   * files can be removed. Without it, they are removed right after the delete.
   */
  retired?(name: string): Promise<void>;
  /** Removes a CRIU image (runtime/criu) no revision uses any more. */
  discardCheckpoint?(key: string): Promise<void>;
  /** The keys of the CRIU images on disk (for `sweep`). */
  listCheckpoints?(): Promise<string[]>;
  /** An automatic snapshot of a revision is ready: later starts restore from `artifactDir`. */
  onSnapshotReady?(revision: RevisionRecord, artifactDir: string): void;
  /** A line for the node's log. */
  log?(line: string): void;
}

/** Options of the service beyond the store and hooks. */
export interface FunctionsServiceOptions {
  /** Builds V8 startup snapshots (`snapshot: true`, and `auto` after a slow init); without it, none are built. */
  snapshots?: SnapshotBuilder;
  /** Init time in ms above which `snapshot: auto` revisions get a snapshot. Default 250. */
  autoSnapshotMs?: number;
}

export interface FunctionDetails {
  function: FunctionRecord;
  config: FunctionConfig;
  revisions: RevisionRecord[];
  instances: InstanceInfo[];
  startError?: string;
}

/** Deploy, list, describe and delete functions: the control plane's logic, free of HTTP. */
export class FunctionsService {
  readonly functions: Bucket<FunctionRecord>;
  readonly revisions: Bucket<RevisionRecord>;
  #artifacts: ArtifactStore;
  #hooks: ServiceHooks;
  // Deploys of one function run one at a time, so revision numbers never race.
  #locks = new Map<string, Promise<unknown>>();

  #snapshots?: SnapshotStepDeps;
  readonly #gc: ArtifactGc;
  /** Automatic snapshots (`snapshot: auto`): fed the init times instances report. */
  readonly autoSnapshots?: AutoSnapshots;
  #collecting = new Set<Promise<unknown>>();

  constructor(store: Store, artifacts: ArtifactStore, hooks: ServiceHooks, options: FunctionsServiceOptions = {}) {
    this.functions = store.bucket<FunctionRecord>('functions');
    this.revisions = store.bucket<RevisionRecord>('revisions');
    this.#artifacts = artifacts;
    this.#hooks = hooks;
    const cache = store.bucket<SnapshotCacheEntry>('snapshots');
    this.#gc = createArtifactGc({
      artifacts,
      revisions: this.revisions,
      cache,
      discardCheckpoint: hooks.discardCheckpoint,
      listCheckpoints: hooks.listCheckpoints,
    });
    if (options.snapshots) {
      this.#snapshots = { builder: options.snapshots, artifacts, cache };
      this.autoSnapshots = createAutoSnapshots({
        deps: this.#snapshots,
        revisions: this.revisions,
        thresholdMs: options.autoSnapshotMs,
        onReady: (rev, dir) => hooks.onSnapshotReady?.(rev, dir),
        collect: async (digests) => void (await this.#gc.collect(digests)),
        log: hooks.log,
      });
    }
  }

  async deploy(input: DeployInput): Promise<DeployResult> {
    const files = await unpackArchive(input.archive);
    const config = resolveConfig(files, input.overrides, input.nameHint);
    // Checked before anything is built or recorded: a bad trigger fails the deploy with a 400.
    const triggers = await this.#hooks.triggers?.plan(config.name, resolveTriggers(files, input.overrides));
    const built = await buildArtifact(files, config);
    // Held until the revision is written: a concurrent delete's collection must not remove it.
    const held = await this.#gc.hold(() => this.#artifacts.put(built.files));
    let releaseSnapshot: (() => void) | undefined;
    try {
      const { digest } = held;
      const identity = configIdentity(digest, config);
      const { snapshot, release } = await this.#snapshot(config, identity, {
        digest,
        files: built.files,
        entry: built.entry,
      });
      releaseSnapshot = release;
      return await this.#serial(config.name, async () => {
        const result = await this.#record(config, digest, identity, built.entry, snapshot, input.canary);
        // Also on a redeploy that made no revision: triggers belong to the function, not to a revision.
        const changes = triggers && (await this.#hooks.triggers!.reconcile(triggers));
        if (changes && changes.created.length + changes.updated.length + changes.deleted.length > 0)
          result.triggers = changes;
        return result;
      });
    } finally {
      held.release();
      releaseSnapshot?.();
    }
  }

  /**
   * Removes stored artifacts, snapshot blobs and CRIU images that no revision references (left by
   * deletes made before collection existed, or by a node killed before it collected). Artifacts
   * younger than `minAgeMs` (default 1 h) stay: a deploy's snapshot build stores its blob before
   * the revision names it.
   */
  async sweep(minAgeMs = 3_600_000): Promise<GcResult> {
    return this.#gc.sweep(minAgeMs);
  }

  /** Resolves when the file removals of deletes so far are done (tests). */
  async collected(): Promise<void> {
    while (this.#collecting.size > 0) await Promise.allSettled([...this.#collecting]);
  }

  /** The snapshot of a new node revision asked for one (not of an unchanged redeploy). */
  async #snapshot(
    config: FunctionConfig,
    identity: string,
    built: { digest: string; files: ArtifactFile[]; entry?: string },
  ): Promise<{ snapshot?: RevisionSnapshot; release?: () => void }> {
    if (!config.snapshot || config.runtime !== 'node' || !built.entry) return {};
    if (!this.#snapshots) {
      const error = 'This node does not build snapshots (its runtime is not the process runtime)';
      if (config.snapshot === 'required') throw new NimbusError('NIMBUS_ERR_SNAPSHOT_FAILED', error);
      return { snapshot: { status: 'failed', error, node: process.version, guest: '' } };
    }
    const current = await this.functions.get(config.name);
    const latest = current && (await this.revisions.get(`${config.name}/${current.value.latestRevision}`));
    if (latest && latest.value.identity === identity) return {};
    const input = { config, digest: built.digest, files: built.files, entry: built.entry };
    // A cached blob of a just-deleted function may be collected before this revision names it: it
    // is held under the collection's lock until the revision is written, and made again if it went.
    for (let attempt = 0; ; attempt++) {
      const snapshot = await snapshotRevision(this.#snapshots, input);
      if (snapshot.status !== 'ready') return { snapshot };
      const { digest } = snapshot;
      const held = await this.#gc.hold(async () => ((await this.#artifacts.has(digest)) ? digest : ''));
      if (held.digest || attempt > 0) return { snapshot, release: held.release };
      held.release();
    }
  }

  async #record(
    config: FunctionConfig,
    digest: string,
    identity: string,
    entry?: string,
    snapshot?: RevisionSnapshot,
    canary?: boolean,
  ): Promise<DeployResult> {
    const name = config.name;
    const now = new Date().toISOString();
    const current = await this.functions.get(name);
    if (current) {
      const latest = await this.revisions.get(`${name}/${current.value.latestRevision}`);
      if (latest?.value.identity === identity) return { created: false, revision: latest.value };
    }
    const number = (current?.value.revisionCount ?? 0) + 1;
    const revision: RevisionRecord = {
      id: `r${number}`,
      function: name,
      number,
      digest,
      identity,
      config,
      entry,
      createdAt: now,
      ...(snapshot ? { snapshot } : {}),
    };
    await this.revisions.put(`${name}/${revision.id}`, revision);
    // The traffic spec and the new revision are written together, so no request sees a half-release.
    const release = await this.#hooks.release?.release(current?.value, revision, canary);
    const record: FunctionRecord = {
      name,
      createdAt: current?.value.createdAt ?? now,
      updatedAt: now,
      latestRevision: revision.id,
      revisionCount: number,
    };
    const traffic = release ? release.traffic : current?.value.traffic;
    if (traffic) record.traffic = traffic;
    if (release?.latestReady) record.latestReady = release.latestReady;
    if (current) await this.functions.update(name, record, current.revision);
    else await this.functions.create(name, record);
    await this.#hooks.onChange(name);
    const rollout = await release?.commit();
    const percent = effectiveTraffic(record).weights.get(revision.id) ?? 0;
    return { created: true, revision, percent, ...(rollout ? { rollout } : {}) };
  }

  /**
   * Changes a function's record in turn with deploys (`mutate` returns the new record, or
   * undefined to change nothing), then reroutes; resolves once traffic follows the change.
   */
  async updateFunction(
    name: string,
    mutate: (fn: FunctionRecord) => FunctionRecord | undefined | Promise<FunctionRecord | undefined>,
  ): Promise<FunctionRecord> {
    return this.#serial(name, async () => {
      await this.#find(name);
      const entry = (await this.functions.get(name))!;
      const next = await mutate(entry.value);
      if (!next) return entry.value;
      const record = { ...next, name, updatedAt: new Date().toISOString() };
      await this.functions.update(name, record, entry.revision);
      await this.#hooks.onChange(name);
      return record;
    });
  }

  instancesOf(name: string): InstanceInfo[] {
    return this.#hooks.instances(name);
  }

  /** Live and recently ended instances of a function, with the crash-loop error if any. */
  async instanceWindow(
    name: string,
  ): Promise<{ instances: InstanceInfo[]; recent: EndedInstanceInfo[]; startError?: string }> {
    const fn = await this.#find(name);
    const startError = this.#hooks.startError(name, fn.latestRevision);
    return {
      instances: this.#hooks.instances(name),
      recent: this.#hooks.ended(name),
      ...(startError ? { startError } : {}),
    };
  }

  async list(): Promise<{ record: FunctionRecord; config: FunctionConfig }[]> {
    const out = [];
    for (const { value } of await this.functions.list()) {
      const rev = await this.revisions.get(`${value.name}/${value.latestRevision}`);
      if (rev) out.push({ record: value, config: rev.value.config });
    }
    return out;
  }

  async get(name: string): Promise<FunctionDetails> {
    const fn = await this.#find(name);
    const revisions = (await this.revisions.list(`${name}/`)).map((e) => e.value).sort((a, b) => a.number - b.number);
    const latest = revisions.find((r) => r.id === fn.latestRevision);
    if (!latest)
      throw new NimbusError(
        'NIMBUS_ERR_INTERNAL',
        `Function ${name} points at a missing revision ${fn.latestRevision}`,
      );
    const startError = this.#hooks.startError(name, fn.latestRevision);
    return {
      function: fn,
      config: latest.config,
      revisions,
      instances: this.#hooks.instances(name),
      ...(startError ? { startError } : {}),
    };
  }

  async remove(name: string): Promise<void> {
    await this.#serial(name, async () => {
      await this.#find(name);
      await this.functions.delete(name);
      const removed = await this.revisions.list(`${name}/`);
      for (const { key } of removed) await this.revisions.delete(key);
      await this.#hooks.onChange(name);
      await this.#hooks.triggers?.removeFunction(name);
      this.#hooks.onDelete?.(name);
      // Files go once the instances using them have stopped; the delete does not wait for that.
      const job = this.#collect(
        name,
        removed.map((e) => e.value),
      );
      this.#collecting.add(job);
      void job.finally(() => this.#collecting.delete(job));
    });
  }

  async #collect(name: string, revisions: RevisionRecord[]): Promise<GcResult | undefined> {
    try {
      await this.#hooks.retired?.(name);
      return await this.#gc.collectRevisions(revisions);
    } catch (err) {
      this.#hooks.log?.(`removing the files of deleted function ${name} failed: ${(err as Error).message}`);
      return undefined;
    }
  }

  async #find(name: string): Promise<FunctionRecord> {
    if (!isValidFunctionName(name))
      throw new NimbusError('NIMBUS_ERR_INVALID_NAME', `Invalid function name: ${JSON.stringify(name)}`);
    const entry = await this.functions.get(name);
    if (!entry) throw new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', `Function not found: ${name}`);
    return entry.value;
  }

  #serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(name) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.#locks.set(name, next);
    next.finally(() => this.#locks.get(name) === next && this.#locks.delete(name)).catch(() => {});
    return next;
  }
}
