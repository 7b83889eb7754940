import type { AbortLike } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { NimbusError } from '../core/errors.js';
import type { Runtime } from '../runtime/types.js';
import { RevisionPool } from './revision-pool.js';
import type { ScaleView } from './scaling.js';
import type { EndedInstanceInfo, InstanceInfo, InstanceLogRecord, Lease, RevisionPlan } from './types.js';

export interface InstanceManagerOptions {
  runtime: Runtime;
  clock: Clock;
  /** Requests one revision may hold while waiting for a slot, unless its `scale.maxQueue` says. Default 1000. */
  maxQueuePerRevision?: number;
  /** How often the autoscaler samples and decides (and idle instances are frozen). Default 1000 ms. */
  reapIntervalMs?: number;
  /**
   * Demand for a revision from outside the gateway, in its metric's units (e.g. async jobs queued
   * for it), asked at every tick and added to what the autoscaler observes. Default none.
   */
  extraDemand?: (plan: RevisionPlan) => number;
  /** Idle time after which instances are frozen, when the runtime supports it. Default 5000 ms; 0 never. */
  freezeAfterMs?: number;
  /** Every instance log line and platform note about an instance. */
  onLog?: (record: InstanceLogRecord) => void;
  /** An instance became ready (`ok`) or failed to start, after `durationMs`: a cold start. */
  /** `mode`: how a successful start happened (spawn, warm pool, snapshot), for counting cold starts by mode. */
  onStart?: (event: {
    function: string;
    revision: string;
    id: string;
    ok: boolean;
    durationMs: number;
    mode?: 'spawn' | 'pool' | 'snapshot' | 'criu';
  }) => void;
}

/** Per-revision instance sets behind one acquire/release surface. */
export interface InstanceManager {
  /** A slot on an instance of the plan's revision; held (not failed) while instances start. */
  acquire(plan: RevisionPlan, signal?: AbortLike): Promise<Lease>;
  /** Starts the revision's `scale.initial` (at least `scale.min`) instances (at boot and after a deploy). */
  ensureMin(plan: RevisionPlan): void;
  /**
   * Takes a revision out of service; its instances stop once idle. With `reject`, held requests
   * fail with it (function deleted); without, they are still served (a newer revision took over).
   */
  retire(key: string, reject?: NimbusError): Promise<void>;
  instances(functionName?: string): InstanceInfo[];
  /** Recently ended instances of a function, newest first. */
  ended(functionName: string): EndedInstanceInfo[];
  /** The latest start failure of a revision that is backing off, if any. */
  startError(key: string): string | undefined;
  /** Requests held waiting for a slot, per function. */
  waiting(): Map<string, number>;
  /** The autoscaler's view of each live revision (of one function, when named). */
  scale(functionName?: string): ScaleView[];
  /** Stops everything. */
  close(): Promise<void>;
}

export function createInstanceManager(options: InstanceManagerOptions): InstanceManager {
  const { runtime, clock } = options;
  const pools = new Map<string, RevisionPool>();
  const byInstance = new Map<string, RevisionPool>();
  let closed = false;

  const poolFor = (plan: RevisionPlan): RevisionPool => {
    let pool = pools.get(plan.key);
    // A retired revision routed to again (rollback, blue/green: docs/traffic.md) gets a fresh
    // pool at once; the retired one finishes draining on its own.
    if (!pool || pool.retired) {
      pool = new RevisionPool(plan, {
        runtime,
        clock,
        maxQueue: options.maxQueuePerRevision ?? 1000,
        freezeAfterMs: options.freezeAfterMs ?? 5000,
        log: (r) => options.onLog?.({ ...r, function: plan.function, revision: plan.revision }),
        started: (id, ok, durationMs, mode) =>
          options.onStart?.({ function: plan.function, revision: plan.revision, id, ok, durationMs, mode }),
        track: (id, p) => (p ? byInstance.set(id, p) : byInstance.delete(id)),
      });
      pools.set(plan.key, pool);
    }
    return pool;
  };

  const unsubscribe = runtime.subscribe((event) => {
    const pool = byInstance.get(event.id);
    if (!pool) return;
    if (event.type === 'log') {
      const { function: fn, revision } = pool.plan;
      options.onLog?.({
        time: event.time,
        function: fn,
        revision,
        instance: event.id,
        requestId: event.requestId,
        stream: event.stream,
        line: event.line,
      });
    } else if (event.state === 'failed' || event.state === 'stopped') {
      pool.onExit(event.id, event.exit);
    }
  });

  const reapEvery = options.reapIntervalMs ?? 1000;
  let cancelReap = () => {};
  const scheduleReap = () => {
    cancelReap = clock.setTimer(() => {
      const now = clock.now();
      for (const pool of pools.values()) pool.tick(now, options.extraDemand?.(pool.plan) ?? 0);
      if (!closed) scheduleReap();
    }, reapEvery);
  };
  scheduleReap();

  return {
    acquire(plan, signal) {
      if (closed) return Promise.reject(new NimbusError('NIMBUS_ERR_SHUTTING_DOWN', 'Nimbus is shutting down'));
      return poolFor(plan).acquire(signal);
    },
    ensureMin(plan) {
      // A revision with scheduled warming needs its pool (and so its tick) before any request.
      const wanted = Math.max(plan.scale.min, plan.scale.initial ?? 0) > 0 || (plan.scale.schedule?.length ?? 0) > 0;
      if (!closed && wanted) poolFor(plan).ensureMin();
    },
    async retire(key, reject) {
      const pool = pools.get(key);
      if (!pool) return;
      await pool.retire(reject);
      if (pools.get(key) === pool && pool.idle) pools.delete(key);
    },
    instances(functionName) {
      const out: InstanceInfo[] = [];
      for (const pool of pools.values())
        if (!functionName || pool.plan.function === functionName) out.push(...pool.info());
      return out;
    },
    ended(functionName) {
      const out: EndedInstanceInfo[] = [];
      for (const pool of pools.values()) if (pool.plan.function === functionName) out.push(...pool.ended());
      return out.sort((a, b) => b.endedAt.localeCompare(a.endedAt));
    },
    waiting() {
      const out = new Map<string, number>();
      for (const pool of pools.values()) out.set(pool.plan.function, (out.get(pool.plan.function) ?? 0) + pool.waiting);
      return out;
    },
    scale(functionName) {
      const out: ScaleView[] = [];
      for (const pool of pools.values())
        if (!functionName || pool.plan.function === functionName) out.push(pool.scaleView());
      return out;
    },
    startError(key) {
      return pools.get(key)?.lastStartError;
    },
    async close() {
      closed = true;
      cancelReap();
      await Promise.all(
        [...pools.values()].map((p) =>
          p.retire(new NimbusError('NIMBUS_ERR_SHUTTING_DOWN', 'Nimbus is shutting down')),
        ),
      );
      unsubscribe();
    },
  };
}
