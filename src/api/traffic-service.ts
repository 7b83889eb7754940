import { NimbusError } from '../core/errors.js';
import { effectiveTraffic, latestReleased, trafficOf, validateTraffic } from '../core/traffic.js';
import type { FunctionRecord, RevisionRecord, TrafficTarget } from '../core/types.js';
import type { RolloutController, RolloutRecord } from '../rollout/index.js';
import type { FunctionsService } from './functions-service.js';

/** A revision with what it gets now. */
export interface RevisionView {
  id: string;
  number: number;
  digest: string;
  identity: string;
  createdAt: string;
  /** Its share of the function's traffic now, in percent. */
  percent: number;
  /** Tags that address it (its own id always does too). */
  tags: string[];
  /** The newest revision. */
  latest: boolean;
  /** What `latest` traffic follows (the newest released revision). */
  latestReady: boolean;
  config: RevisionRecord['config'];
}

/** A function's traffic: the spec as set, and who gets what now. */
export interface TrafficView {
  function: string;
  latestRevision: string;
  latestReady: string;
  traffic: TrafficTarget[];
  /** The spec resolved: one entry per revision with a share or a tag. */
  effective: { revision: string; percent: number; tags: string[] }[];
  /** The running rollout, when there is one. */
  rollout?: { canary: string; percent: number; status: string };
}

/**
 * Revisions (list / describe), traffic (read / set / roll back) and rollouts (read / abort) of a
 * function: the control plane's logic behind traffic-routes.ts, free of HTTP. Every change goes
 * through FunctionsService.updateFunction, so it is serialised with deploys and routing follows
 * before it resolves. Setting traffic by hand stops a running rollout (the hand wins).
 */
export class TrafficService {
  #service: FunctionsService;
  #rollouts?: RolloutController;

  constructor(service: FunctionsService, rollouts?: RolloutController) {
    this.#service = service;
    this.#rollouts = rollouts;
  }

  async revisions(name: string): Promise<RevisionView[]> {
    const fn = (await this.#service.get(name)).function;
    const all = (await this.#service.revisions.list(`${name}/`)).map((e) => e.value);
    return all.sort((a, b) => b.number - a.number).map((r) => view(fn, r));
  }

  async revision(name: string, id: string): Promise<RevisionView> {
    const fn = (await this.#service.get(name)).function;
    const rev = await this.#service.revisions.get(`${name}/${id}`);
    if (!rev) throw new NimbusError('NIMBUS_ERR_REVISION_NOT_FOUND', `Function ${name} has no revision ${id}`);
    return view(fn, rev.value);
  }

  async traffic(name: string): Promise<TrafficView> {
    return this.#view((await this.#service.get(name)).function);
  }

  /** Replaces the spec atomically (blue/green is one call). `body` is `{ "traffic": [...] }`. */
  async setTraffic(name: string, body: unknown): Promise<TrafficView> {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new NimbusError(
        'NIMBUS_ERR_INVALID_REQUEST',
        'Body must be JSON: {"traffic": [{"revision", "percent", "tag"?}]}',
      );
    const { traffic, ...rest } = body as Record<string, unknown>;
    for (const key of Object.keys(rest)) throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `Unknown field: ${key}`);
    const ids = await this.#ids(name);
    const spec = validateTraffic(traffic, ids);
    return this.#write(name, () => spec, 'traffic set by hand');
  }

  /**
   * Sends all traffic to `revision`, or to the revision before the one serving most now, pinned
   * (new deploys get no traffic until `latest` is set again); tags are kept.
   */
  async rollback(name: string, revision?: string): Promise<TrafficView & { from: string; to: string }> {
    const ids = await this.#ids(name);
    // During a canary, "roll back" means: stop it and restore the traffic from before it.
    const running = await this.#rollouts?.get(name);
    if (!revision && running?.status === 'running') {
      await this.abortRollout(name);
      return { ...(await this.traffic(name)), from: running.canary, to: running.previousLatest };
    }
    let from = '';
    let to = '';
    const view = await this.#write(
      name,
      (fn) => {
        const { weights } = effectiveTraffic(fn);
        from = [...weights].sort((a, b) => b[1] - a[1])[0]?.[0] ?? latestReleased(fn);
        to = revision ?? previousOf(from, ids);
        if (!ids.has(to))
          throw new NimbusError('NIMBUS_ERR_REVISION_NOT_FOUND', `Function ${name} has no revision ${to}`);
        const tags = trafficOf(fn).filter((t) => t.tag && t.percent === 0);
        return [{ revision: to, percent: 100 }, ...tags.map((t) => ({ ...t }))];
      },
      'rolled back by hand',
    );
    return { ...view, from, to };
  }

  async rollout(name: string): Promise<RolloutRecord> {
    await this.#service.get(name);
    const record = await this.#rollouts?.get(name);
    if (!record) throw new NimbusError('NIMBUS_ERR_ROLLOUT_NOT_FOUND', `Function ${name} has no rollout yet`);
    return record;
  }

  /** Stops the running rollout and restores the traffic from before it. */
  async abortRollout(name: string): Promise<RolloutRecord> {
    await this.#service.get(name);
    const record = await this.#rollouts?.abort(name, 'aborted by hand');
    if (!record) throw new NimbusError('NIMBUS_ERR_ROLLOUT_NOT_FOUND', `Function ${name} has no running rollout`);
    return record;
  }

  async #ids(name: string): Promise<Set<string>> {
    await this.#service.get(name);
    return new Set((await this.#service.revisions.list(`${name}/`)).map((e) => e.value.id));
  }

  async #write(name: string, spec: (fn: FunctionRecord) => TrafficTarget[], reason: string): Promise<TrafficView> {
    const fn = await this.#service.updateFunction(name, (current) => {
      const traffic = spec(current);
      // Under the function's lock: no rollout step can overwrite what is written here.
      this.#rollouts?.interrupt(name, reason);
      return { ...current, traffic };
    });
    return this.#view(fn);
  }

  async #view(fn: FunctionRecord): Promise<TrafficView> {
    const { weights, tags } = effectiveTraffic(fn);
    const revisions = new Set([...weights.keys(), ...tags.values()]);
    const rollout = await this.#rollouts?.get(fn.name);
    return {
      function: fn.name,
      latestRevision: fn.latestRevision,
      latestReady: latestReleased(fn),
      traffic: [...trafficOf(fn)],
      effective: [...revisions].map((revision) => ({
        revision,
        percent: weights.get(revision) ?? 0,
        tags: [...tags].filter(([, r]) => r === revision).map(([t]) => t),
      })),
      ...(rollout?.status === 'running'
        ? { rollout: { canary: rollout.canary, percent: rollout.percent, status: rollout.status } }
        : {}),
    };
  }
}

function view(fn: FunctionRecord, r: RevisionRecord): RevisionView {
  const { weights, tags } = effectiveTraffic(fn);
  return {
    id: r.id,
    number: r.number,
    digest: r.digest,
    identity: r.identity,
    createdAt: r.createdAt,
    percent: weights.get(r.id) ?? 0,
    tags: [...tags].filter(([, rev]) => rev === r.id).map(([t]) => t),
    latest: fn.latestRevision === r.id,
    latestReady: latestReleased(fn) === r.id,
    config: r.config,
  };
}

/** The newest revision older than `id`. */
function previousOf(id: string, ids: ReadonlySet<string>): string {
  const n = Number(id.slice(1));
  const older = [...ids].map((r) => Number(r.slice(1))).filter((m) => m < n);
  if (older.length === 0)
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_REQUEST',
      `${id} is the oldest revision: there is nothing to roll back to`,
    );
  return `r${Math.max(...older)}`;
}
