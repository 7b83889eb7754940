import type { Clock } from '../core/clock.js';
import { NimbusError, toNimbusError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { ExitInfo, Instance, Runtime } from '../runtime/types.js';
import { type Freezable, freeze, thawed } from './freezer.js';
import { instancesToReap, instancesToStart, restartBackoffMs } from './scaling.js';
import type { EndedInstanceInfo, InstanceInfo, InstanceLogRecord, Lease, RevisionPlan, SlotState } from './types.js';

/** Ended instances remembered per revision. */
const ENDED_KEPT = 20;

interface Slot extends Freezable {
  id: string;
  state: SlotState;
  stateSince: number;
  /** Why the platform is stopping it. */
  stopReason?: string;
  instance?: Instance;
  inFlight: number;
  requests: number;
  startedAt: number;
  readyAt?: number;
  lastUsedAt: number;
}

interface Waiter {
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  cleanup(): void;
}

export interface PoolDeps {
  runtime: Runtime;
  clock: Clock;
  /** Requests a revision may hold while waiting for a slot; past it, 503. */
  maxQueue: number;
  /** Idle time after which an instance is frozen (when the runtime can); 0 never freezes. */
  freezeAfterMs: number;
  log(record: Omit<InstanceLogRecord, 'function' | 'revision'>): void;
  /** An instance finished starting, successfully or not. */
  started(id: string, ok: boolean, durationMs: number, mode?: Instance['startMode']): void;
  /** Called when an instance id joins or leaves, so the manager can route runtime events. */
  track(id: string, pool: RevisionPool | undefined): void;
}

/**
 * The instances of one revision and the requests waiting for them. Requests take a slot on the
 * least-loaded ready instance; when none is free they are held (never dropped) and instances are
 * started up to `scale.max`. Idle instances above `scale.min` are stopped after `idleTimeout`.
 */
export class RevisionPool {
  readonly plan: RevisionPlan;
  #deps: PoolDeps;
  #slots = new Map<string, Slot>();
  #waiters: Waiter[] = [];
  #retired = false;
  #startFailures = 0;
  #cancelRetry?: () => void;
  #lastStartError?: NimbusError;
  #ended: EndedInstanceInfo[] = [];

  constructor(plan: RevisionPlan, deps: PoolDeps) {
    this.plan = plan;
    this.#deps = deps;
  }

  acquire(signal?: AbortSignal): Promise<Lease> {
    if (this.#retired)
      return Promise.reject(
        new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', `Function ${this.plan.function} was removed`),
      );
    const slot = this.#pickReady();
    if (slot && this.#waiters.length === 0) return this.#leaseReady(slot, false);
    if (this.#cancelRetry && this.#lastStartError && !this.#hasLive()) {
      // Crash loop: fail fast with the start error instead of holding callers through the backoff.
      return Promise.reject(this.#lastStartError);
    }
    if (this.#waiters.length >= this.#deps.maxQueue) {
      return Promise.reject(
        new NimbusError(
          'NIMBUS_ERR_OVERLOADED',
          `Function ${this.plan.function} is overloaded: ${this.#waiters.length} requests already waiting`,
        ),
      );
    }
    return new Promise<Lease>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal?.reason ?? new NimbusError('NIMBUS_ERR_TIMEOUT', 'Gave up waiting for an instance'));
      };
      const waiter: Waiter = { resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#dispatch();
      this.#scale();
    });
  }

  /** Starts instances until `scale.min` are live (respecting the crash backoff). */
  ensureMin(): void {
    this.#scale();
  }

  /** Stops idle instances past their idle timeout. */
  reap(now: number): void {
    const live = [...this.#slots.values()].filter((s) => s.state === 'ready' || s.state === 'starting');
    const ids = instancesToReap(
      live.filter((s) => s.state === 'ready'),
      live.length,
      this.#retired ? 0 : this.plan.scale.min,
      this.plan.scale.idleTimeout * 1000,
      now,
    );
    for (const id of ids) this.#stop(this.#slots.get(id)!, 'idle timeout');
    const { runtime, freezeAfterMs } = this.#deps;
    if (!runtime.freeze || freezeAfterMs <= 0) return;
    for (const slot of this.#slots.values()) {
      if (
        slot.state === 'ready' &&
        slot.inFlight === 0 &&
        !slot.frozen &&
        !slot.transition &&
        now - slot.lastUsedAt >= freezeAfterMs
      ) {
        freeze(this.#deps.runtime, slot);
      }
    }
  }

  /**
   * Takes the revision out of service: no new requests; held ones are rejected when `reject` is
   * given, instances stop as soon as their in-flight requests finish. Resolves when all are gone.
   */
  async retire(reject?: NimbusError): Promise<void> {
    this.#retired = true;
    this.#cancelRetry?.();
    if (reject) for (const w of this.#waiters.splice(0)) this.#fail(w, reject);
    // Held requests (when not rejected) are still served by this revision's instances.
    if (this.#waiters.length === 0) {
      for (const slot of this.#slots.values()) {
        if (slot.state === 'ready') this.#setState(slot, 'draining');
        if (slot.state === 'draining' && slot.inFlight === 0) this.#stop(slot, 'revision retired');
      }
    }
    await this.#whenEmpty();
  }

  get idle(): boolean {
    return this.#slots.size === 0 && this.#waiters.length === 0;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  info(): InstanceInfo[] {
    const iso = (t?: number) => (t === undefined ? undefined : new Date(t).toISOString());
    return [...this.#slots.values()].map((s) => ({
      id: s.id,
      function: this.plan.function,
      revision: this.plan.revision,
      state: s.state === 'ready' && s.inFlight > 0 ? 'busy' : s.state === 'ready' && s.frozen ? 'frozen' : s.state,
      stateSince: iso(s.stateSince)!,
      inFlight: s.inFlight,
      requests: s.requests,
      startedAt: iso(s.startedAt)!,
      readyAt: iso(s.readyAt),
      lastUsedAt: s.requests > 0 ? iso(s.lastUsedAt) : undefined,
      pid: s.instance?.pid,
      startMode: s.instance ? (s.instance.startMode ?? 'spawn') : undefined,
    }));
  }

  /** Instances of this revision that ended recently, newest first. */
  ended(): EndedInstanceInfo[] {
    return [...this.#ended];
  }

  /** The runtime reports that an instance ended (crash, OOM, or our own stop). */
  onExit(id: string, exit?: ExitInfo): void {
    const slot = this.#slots.get(id);
    // A start that fails is handled where `start` rejects, not here.
    if (!slot || slot.state === 'starting') return;
    this.#slots.delete(id);
    this.#deps.track(id, undefined);
    const crashed = slot.state !== 'stopping' && !exit?.expected;
    this.#remember(
      slot,
      crashed ? 'crashed' : 'stopped',
      crashed ? (exit?.reason ?? 'exited') : (slot.stopReason ?? exit?.reason ?? 'stopped'),
    );
    if (exit && !exit.expected && slot.state !== 'stopping') {
      this.#deps.log({
        time: this.#deps.clock.now(),
        instance: id,
        stream: 'system',
        line: `instance ${id} ${exit.reason}; it will be replaced when needed`,
      });
    }
    this.#notifyEmpty();
    if (!this.#retired) this.#scale();
  }

  #hasLive(): boolean {
    for (const s of this.#slots.values()) if (s.state === 'ready' || s.state === 'starting') return true;
    return false;
  }

  #pickReady(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.#slots.values()) {
      if (s.state !== 'ready' || s.inFlight >= this.plan.concurrency) continue;
      // Least loaded first; among equals, one that is running rather than frozen.
      if (!best || s.inFlight < best.inFlight || (s.inFlight === best.inFlight && best.frozen && !s.frozen)) best = s;
    }
    return best;
  }

  /** A lease on `slot`, resolved once its instance is thawed (when it was frozen). */
  #leaseReady(slot: Slot, cold: boolean): Promise<Lease> {
    const lease = this.#lease(slot, cold);
    if (!slot.frozen && !slot.transition) return Promise.resolve(lease);
    return thawed(this.#deps.runtime, slot).then(() => lease);
  }

  #lease(slot: Slot, cold: boolean): Lease {
    slot.inFlight++;
    slot.requests++;
    let released = false;
    return {
      instance: slot.instance!,
      cold,
      release: (options) => {
        if (released) return;
        released = true;
        slot.inFlight--;
        slot.lastUsedAt = this.#deps.clock.now();
        if (options?.recycle && slot.state === 'ready') this.#setState(slot, 'draining');
        this.#dispatch();
        if (slot.inFlight > 0) return;
        if (slot.state === 'draining')
          this.#stop(slot, this.#retired ? 'revision retired' : 'recycled after a timeout');
        else if (this.#retired && this.#waiters.length === 0) this.#stop(slot, 'revision retired');
      },
    };
  }

  /** Hands free slots to held requests, in arrival order. */
  #dispatch(): void {
    while (this.#waiters.length > 0) {
      const slot = this.#pickReady();
      if (!slot) return;
      const waiter = this.#waiters.shift()!;
      waiter.cleanup();
      this.#leaseReady(slot, true).then(waiter.resolve, waiter.reject);
    }
  }

  #scale(): void {
    if (this.#retired || this.#cancelRetry) return;
    let ready = 0;
    let starting = 0;
    let inFlight = 0;
    for (const s of this.#slots.values()) {
      if (s.state === 'ready') ready++;
      else if (s.state === 'starting') starting++;
      if (s.state === 'ready' || s.state === 'draining') inFlight += s.inFlight;
    }
    const n = instancesToStart({
      ready,
      starting,
      inFlight,
      waiting: this.#waiters.length,
      concurrency: this.plan.concurrency,
      min: this.plan.scale.min,
      max: this.plan.scale.max,
    });
    for (let i = 0; i < n; i++) this.#start();
  }

  #start(): void {
    const now = this.#deps.clock.now();
    const id = newId(`${this.plan.function}-${this.plan.revision}`, 4);
    const slot: Slot = {
      id,
      state: 'starting',
      stateSince: now,
      inFlight: 0,
      requests: 0,
      startedAt: now,
      lastUsedAt: now,
    };
    this.#slots.set(id, slot);
    this.#deps.track(id, this);
    this.#deps.runtime.start({ ...this.plan.spec, id }).then(
      (instance) => {
        slot.instance = instance;
        if (slot.state !== 'starting') return void this.#deps.runtime.stop(id);
        this.#startFailures = 0;
        this.#setState(slot, 'ready');
        slot.readyAt = slot.lastUsedAt = this.#deps.clock.now();
        this.#deps.started(id, true, slot.readyAt - slot.startedAt, instance.startMode ?? 'spawn');
        this.#dispatch();
        if (this.#retired && slot.inFlight === 0) this.#stop(slot, 'revision retired');
      },
      (err) => this.#onStartFailed(slot, toNimbusError(err)),
    );
  }

  #remember(slot: Slot, state: 'stopped' | 'crashed', reason: string): void {
    this.#ended.unshift({
      id: slot.id,
      function: this.plan.function,
      revision: this.plan.revision,
      state,
      startedAt: new Date(slot.startedAt).toISOString(),
      endedAt: new Date(this.#deps.clock.now()).toISOString(),
      requests: slot.requests,
      reason,
    });
    if (this.#ended.length > ENDED_KEPT) this.#ended.pop();
  }

  #setState(slot: Slot, state: SlotState): void {
    slot.state = state;
    slot.stateSince = this.#deps.clock.now();
  }

  #onStartFailed(slot: Slot, err: NimbusError): void {
    this.#slots.delete(slot.id);
    this.#deps.track(slot.id, undefined);
    this.#remember(slot, 'crashed', `failed to start: ${err.message}`);
    this.#deps.started(slot.id, false, this.#deps.clock.now() - slot.startedAt);
    this.#startFailures++;
    this.#lastStartError = err;
    this.#deps.log({
      time: this.#deps.clock.now(),
      instance: slot.id,
      stream: 'system',
      line: `instance ${slot.id} failed to start: ${err.message}`,
    });
    // Held requests fail fast when nothing else could serve them: a broken revision must not
    // hold callers until their timeout.
    if (!this.#hasLive()) for (const w of this.#waiters.splice(0)) this.#fail(w, err);
    this.#notifyEmpty();
    if (this.#retired) return;
    // Crash-looping revisions back off exponentially instead of spinning the node.
    const delay = restartBackoffMs(this.#startFailures);
    this.#cancelRetry = this.#deps.clock.setTimer(() => {
      this.#cancelRetry = undefined;
      this.#scale();
    }, delay);
  }

  /** The latest start error, for `nimbus get` (cleared by a successful start). */
  get lastStartError(): string | undefined {
    return this.#startFailures > 0 ? this.#lastStartError?.message : undefined;
  }

  #stop(slot: Slot, why: string): void {
    if (slot.state === 'stopping') return;
    this.#setState(slot, 'stopping');
    slot.stopReason = why;
    this.#deps.log({
      time: this.#deps.clock.now(),
      instance: slot.id,
      stream: 'system',
      line: `stopping instance ${slot.id}: ${why}`,
    });
    this.#deps.runtime.stop(slot.id).finally(() => this.onExit(slot.id));
  }

  #fail(waiter: Waiter, err: unknown): void {
    waiter.cleanup();
    waiter.reject(err);
  }

  #emptyWaiters: (() => void)[] = [];
  #whenEmpty(): Promise<void> {
    if (this.#slots.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }
  #notifyEmpty(): void {
    if (this.#slots.size === 0) for (const r of this.#emptyWaiters.splice(0)) r();
  }
}
