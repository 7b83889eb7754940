import { effectiveTraffic, pickWeighted } from '../core/traffic.js';
import type { FunctionRecord, RevisionRecord } from '../core/types.js';
import type { RevisionPlan } from '../instances/types.js';
import { checkpointKey } from '../runtime/criu/key.js';
import type { ArtifactStore, ReadonlyBucket } from '../store/types.js';

/** The data plane's one question to the control plane's records (OpenFaaS's `Resolve(name)`). */
export interface Resolver {
  /**
   * The plan of the revision that serves this request of `name`, or undefined for an unknown
   * function (or an unknown tag). Without `tag`, a revision is picked by the traffic weights on
   * every call (sticky per request only: call it once per request); with `tag`, the revision the
   * tag names, or the revision whose id is `tag` (`r3`).
   */
  resolve(name: string, tag?: string): RevisionPlan | undefined;
}

/** What changed for one function after a refresh, so the caller can retire and warm instances. */
export interface RouteChange {
  /** The revision with the largest share before / after (undefined: unknown or deleted function). */
  before?: RevisionPlan;
  after?: RevisionPlan;
  /** Every revision routed to by share or tag now: keep these warm. */
  referenced: RevisionPlan[];
  /** Revisions routed to before and not any more (every revision of a deleted function): retire these. */
  unreferenced: RevisionPlan[];
}

export interface StoreResolver extends Resolver {
  /** Loads every function. */
  load(): Promise<void>;
  /**
   * Re-reads one function after the control plane changed it; resolves once routing uses the
   * new state.
   */
  refresh(name: string): Promise<RouteChange>;
  /** Every referenced revision of every function. */
  plans(): RevisionPlan[];
  /** The plan of one revision of a function, routed to or not (undefined when unknown). */
  plan(name: string, revision: string): RevisionPlan | undefined;
  /** The fraction (0–1) of the function's untagged traffic that goes to this revision. */
  share(plan: RevisionPlan): number;
}

/**
 * Builds the instance manager's plan of a revision. With `snapshotBlob`, `artifactDir` is the
 * revision's snapshot artifact and instances are restored from the blob in it (docs/snapshots.md).
 */
export function planFor(revision: RevisionRecord, artifactDir: string, snapshotBlob?: string): RevisionPlan {
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
      ...(snapshotBlob ? { snapshotBlob } : {}),
      // App mode + snapshot: a CRIU image, kept under the revision identity (runtime/criu).
      ...(checkpointKey(revision) ? { checkpoint: checkpointKey(revision) } : {}),
      command: config.command,
      env: config.env,
      memoryMb: config.memory,
      cpu: config.cpu,
      network: config.network ?? 'egress',
      timeoutMs: config.timeout * 1000,
    },
  };
}

/** One function's routing: every revision's plan, the weighted ones, and the tags. */
interface Route {
  byRevision: Map<string, RevisionPlan>;
  weighted: RevisionPlan[];
  weights: number[];
  tags: Map<string, RevisionPlan>;
}

const referencedOf = (route: Route | undefined): RevisionPlan[] =>
  route ? [...new Set([...route.weighted, ...route.tags.values()])] : [];

const primaryOf = (route: Route | undefined): RevisionPlan | undefined => {
  if (!route || route.weighted.length === 0) return undefined;
  let best = 0;
  for (let i = 1; i < route.weights.length; i++) if (route.weights[i]! > route.weights[best]!) best = i;
  return route.weighted[best];
};

/**
 * Routing table kept in memory (the request path never touches the store), filled from the
 * functions and revisions buckets. Every revision of a function has a plan (so `@r3` always
 * works); traffic weights and tags point at them. `random` is injectable for tests.
 */
export function createStoreResolver(deps: {
  functions: ReadonlyBucket<FunctionRecord>;
  revisions: ReadonlyBucket<RevisionRecord>;
  artifacts: ArtifactStore;
  random?: () => number;
  /** Node version of the instances, for snapshot blobs. Default: this process's. */
  nodeVersion?: string;
}): StoreResolver {
  const table = new Map<string, Route>();
  const random = deps.random ?? Math.random;

  const nodeVersion = deps.nodeVersion ?? process.version;
  /**
   * Restored from its snapshot when one was built for this Node (a blob loads only in the Node
   * that made it), else a plain start. An artifact gone from disk leaves that one revision
   * unroutable, not the whole function.
   */
  const planOf = async (rev: RevisionRecord): Promise<RevisionPlan | undefined> => {
    const snapshot = rev.snapshot;
    if (snapshot?.status === 'ready' && snapshot.node === nodeVersion) {
      const dir = await deps.artifacts.localPath(snapshot.digest).catch(() => undefined);
      if (dir) return planFor(rev, dir, snapshot.blob);
    }
    const dir = await deps.artifacts.localPath(rev.digest).catch(() => undefined);
    return dir ? planFor(rev, dir) : undefined;
  };

  const read = async (name: string): Promise<Route | undefined> => {
    const fn = await deps.functions.get(name);
    if (!fn) return undefined;
    const previous = table.get(name)?.byRevision;
    const byRevision = new Map<string, RevisionPlan>();
    for (const { value: rev } of await deps.revisions.list(`${name}/`)) {
      // Plans are immutable like their revisions: keep the same object across refreshes.
      const known = previous?.get(rev.id);
      if (known) byRevision.set(rev.id, known);
      else {
        const plan = await planOf(rev);
        if (plan) byRevision.set(rev.id, plan);
      }
    }
    const { weights, tags } = effectiveTraffic(fn.value);
    const route: Route = { byRevision, weighted: [], weights: [], tags: new Map() };
    for (const [revision, percent] of weights) {
      const plan = byRevision.get(revision);
      if (plan) {
        route.weighted.push(plan);
        route.weights.push(percent);
      }
    }
    for (const [tag, revision] of tags) {
      const plan = byRevision.get(revision);
      if (plan) route.tags.set(tag, plan);
    }
    return route.weighted.length > 0 || route.tags.size > 0 ? route : undefined;
  };

  return {
    resolve(name, tag) {
      const route = table.get(name);
      if (!route) return undefined;
      if (tag !== undefined) return route.tags.get(tag) ?? route.byRevision.get(tag);
      const { weighted } = route;
      if (weighted.length <= 1) return weighted[0];
      return weighted[pickWeighted(route.weights, random())];
    },
    plans: () => [...table.values()].flatMap(referencedOf),
    plan: (name, revision) => table.get(name)?.byRevision.get(revision),
    share(plan) {
      const route = table.get(plan.function);
      const i = route ? route.weighted.indexOf(plan) : -1;
      if (!route || i === -1) return 0;
      const total = route.weights.reduce((a, b) => a + b, 0);
      return total > 0 ? route.weights[i]! / total : 0;
    },
    async load() {
      for (const { key } of await deps.functions.list()) {
        const route = await read(key);
        if (route) table.set(key, route);
      }
    },
    async refresh(name) {
      const old = table.get(name);
      const route = await read(name);
      if (route) table.set(name, route);
      else table.delete(name);
      const referenced = referencedOf(route);
      const keep = new Set(referenced.map((p) => p.key));
      return {
        before: primaryOf(old),
        after: primaryOf(route),
        referenced,
        // A deleted function retires every revision, also those only reached through `@ID`.
        unreferenced: (route ? referencedOf(old) : [...(old?.byRevision.values() ?? [])]).filter(
          (p) => !keep.has(p.key),
        ),
      };
    },
  };
}
