import type { FunctionRecord, RevisionRecord } from '../core/types.js';
import type { RevisionPlan } from '../instances/types.js';
import type { ArtifactStore, ReadonlyBucket } from '../store/types.js';

/** The data plane's one question to the control plane's records (OpenFaaS's `Resolve(name)`). */
export interface Resolver {
  /** The plan of the revision that serves `name` now, or undefined for an unknown function. */
  resolve(name: string): RevisionPlan | undefined;
}

export interface StoreResolver extends Resolver {
  /** Loads every function. */
  load(): Promise<void>;
  /**
   * Re-reads one function after the control plane changed it; resolves once routing uses the
   * new state. Returns the previous and current plans so the caller can retire / warm them.
   */
  refresh(name: string): Promise<{ before?: RevisionPlan; after?: RevisionPlan }>;
  plans(): RevisionPlan[];
}

/** Builds the instance manager's plan of a revision. */
export function planFor(revision: RevisionRecord, artifactDir: string): RevisionPlan {
  const { config } = revision;
  return {
    key: `${revision.function}/${revision.id}`,
    function: revision.function,
    revision: revision.id,
    concurrency: config.concurrency,
    scale: config.scale,
    spec: {
      function: revision.function,
      revision: revision.id,
      kind: config.runtime,
      artifactDir,
      entry: revision.entry,
      command: config.command,
      env: config.env,
      memoryMb: config.memory,
      cpu: config.cpu,
      network: config.network ?? 'egress',
      timeoutMs: config.timeout * 1000,
    },
  };
}

/**
 * Routing table kept in memory (the request path never touches the store), filled from the
 * functions and revisions buckets.
 */
export function createStoreResolver(deps: {
  functions: ReadonlyBucket<FunctionRecord>;
  revisions: ReadonlyBucket<RevisionRecord>;
  artifacts: ArtifactStore;
}): StoreResolver {
  const table = new Map<string, RevisionPlan>();

  const read = async (name: string): Promise<RevisionPlan | undefined> => {
    const fn = await deps.functions.get(name);
    if (!fn) return undefined;
    const rev = await deps.revisions.get(`${name}/${fn.value.latestRevision}`);
    if (!rev) return undefined;
    return planFor(rev.value, await deps.artifacts.localPath(rev.value.digest));
  };

  return {
    resolve: (name) => table.get(name),
    plans: () => [...table.values()],
    async load() {
      for (const { key } of await deps.functions.list()) {
        const plan = await read(key);
        if (plan) table.set(key, plan);
      }
    },
    async refresh(name) {
      const before = table.get(name);
      const after = await read(name);
      if (after) table.set(name, after);
      else table.delete(name);
      return { before, after };
    },
  };
}
