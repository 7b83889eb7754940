import type { AbortLike } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { NimbusError, toNimbusError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { ExitInfo, Instance, Runtime } from '../runtime/types.js';
import { HeldRequests } from './activator.js';
import { freezeIdle, thawed } from './freezer.js';
import { instancesToDrain, RevisionAutoscaler, restartBackoffMs, type ScaleView } from './scaling.js';
import { countSlots, endedInfo, hasLive, newSlot, pickReady, type Slot, slotInfo, spareCapacity } from './slots.js';
import type { EndedInstanceInfo, InstanceInfo, InstanceLogRecord, Lease, RevisionPlan, SlotState } from './types.js';

/** Ended instances remembered per revision. */
const ENDED_KEPT = 20;

export interface PoolDeps {
  runtime: Runtime;
  clock: Clock;
  /** Requests a revision may hold while waiting for a slot, unless `scale.maxQueue` says; past it, 503. */
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
 * The instances of one revision and the requests waiting for them: the autoscaler's actuator and
 * the activator. Requests take a slot on the least-loaded ready instance; when none is free they
 * are held in arrival order, up to the queue bound (then NIMBUS_ERR_OVERLOADED, 503). Each tick,
 * and at once when held requests outgrow the spare capacity, the revision's autoscaler decides
 * how many instances are wanted; the pool starts that many, or
 * drains the surplus: a drained instance takes no new request and stops once its requests are
 * done (at the latest after the function's timeout).
 */
export class RevisionPool {
  readonly plan: RevisionPlan;
  #deps: PoolDeps;
  #slots = new Map<string, Slot>();
  #held: HeldRequests<Lease>;
  #retired = false;
  #startFailures = 0;
  #cancelRetry?: () => void;
  #lastStartError?: NimbusError;
  #ended: EndedInstanceInfo[] = [];
  #autoscaler: RevisionAutoscaler;
  /** Requests holding a lease now. */
  #active = 0;

  constructor(plan: RevisionPlan, deps: PoolDeps) {
    this.plan = plan;
    this.#deps = deps;
    this.#autoscaler = new RevisionAutoscaler(plan, deps.clock.now());
    this.#held = new HeldRequests(plan.scale.maxQueue ?? deps.maxQueue, () => this.#observe());
  }

  acquire(signal?: AbortLike): Promise<Lease> {
    if (this.#retired)
      return Promise.reject(
        new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', `Function ${this.plan.function} was removed`),
      );
    this.#autoscaler.collector.request(this.#deps.clock.now());
    const slot = this.#pickReady();
    if (slot && this.#held.length === 0) return this.#leaseReady(slot, false);
    if (this.#cancelRetry && this.#lastStartError && !this.#hasLive()) {
      // Crash loop: fail fast with the start error instead of holding callers through the backoff.
      return Promise.reject(this.#lastStartError);
    }
    if (this.#held.full) {
      return Promise.reject(
        new NimbusError(
          'NIMBUS_ERR_OVERLOADED',
          `Function ${this.plan.function} is overloaded: ${this.#held.length} requests already waiting`,
        ),
      );
    }
    const lease = this.#held.hold(signal);
    this.#dispatch();
    // Held requests beyond what live instances can take (all of them at zero): decide at once,
    // as Knative's activator pokes the autoscaler, instead of waiting up to a second for the tick.
    // At max already, a decision could add nothing: skip it rather than run one per arrival.
    const { ready, starting } = this.#counts();
    const atMax = ready + starting >= this.#autoscaler.settings.max;
    if (!atMax && this.#held.length > spareCapacity(this.#slots.values(), this.plan.concurrency))
      this.#decide(this.#deps.clock.now(), this.#autoscaler.extraDemand, true);
    else this.#actuate(this.#autoscaler.desired);
    return lease;
  }

  /** Starts the revision's `scale.initial` (at least `min`) instances, respecting the crash backoff. */
  ensureMin(): void {
    this.#actuate(this.#autoscaler.desired);
  }

  /**
   * Once a second: closes the collector's sample, runs the decider and acts on it, and freezes
   * instances idle past freezeAfterMs. `extraDemand`: demand from elsewhere (async queue depth),
   * in the metric's units.
   */
  tick(now: number, extraDemand = 0): void {
    this.#autoscaler.collector.tick(now, this.#hasLive() || this.#counts().draining > 0);
    if (!this.#retired) this.#decide(now, extraDemand);
    freezeIdle(this.#deps.runtime, this.#slots.values(), now, this.#deps.freezeAfterMs);
  }

  /**
   * Takes the revision out of service: no new requests; held ones are rejected when `reject` is
   * given, instances stop as soon as their in-flight requests finish. Resolves when all are gone.
   */
  async retire(reject?: NimbusError): Promise<void> {
    this.#retired = true;
    this.#cancelRetry?.();
    if (reject) this.#held.failAll(reject);
    // Held requests (when not rejected) are still served by this revision's instances.
    if (this.#held.length === 0) {
      for (const slot of this.#slots.values()) {
        if (slot.state === 'ready') this.#setState(slot, 'draining');
        if (slot.state === 'draining' && slot.inFlight === 0) this.#stop(slot, 'revision retired');
      }
    }
    await this.#whenEmpty();
  }

  /** Taken out of service by retire(): it takes no new requests. */
  get retired(): boolean {
    return this.#retired;
  }

  get idle(): boolean {
    return this.#slots.size === 0 && this.#held.length === 0;
  }

  get waiting(): number {
    return this.#held.length;
  }

  /** The autoscaler's view: desired and actual instances, panic, observed load, the queue. */
  scaleView(): ScaleView {
    return this.#autoscaler.view(this.plan, this.#deps.clock.now(), {
      ...this.#counts(),
      queue: this.#held.length,
      queueLimit: this.#held.limit,
    });
  }

  info(): InstanceInfo[] {
    return [...this.#slots.values()].map((s) => slotInfo(s, this.plan));
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
    if (!this.#retired) this.#actuate(this.#autoscaler.desired);
  }

  #hasLive(): boolean {
    return hasLive(this.#slots.values());
  }

  #pickReady(): Slot | undefined {
    return pickReady(this.#slots.values(), this.plan.concurrency);
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
    this.#active++;
    this.#observe();
    let released = false;
    let longLived = false;
    return {
      instance: slot.instance!,
      cold,
      outlivesTimeout: () => {
        if (released || longLived) return;
        longLived = true;
        slot.longLived = (slot.longLived ?? 0) + 1;
      },
      release: (options) => {
        if (released) return;
        released = true;
        slot.inFlight--;
        if (longLived) slot.longLived! -= 1;
        this.#active--;
        slot.lastUsedAt = this.#deps.clock.now();
        if (options?.recycle && (slot.state === 'ready' || slot.cancelDrain)) {
          slot.cancelDrain?.();
          slot.cancelDrain = undefined;
          slot.stopReason = 'recycled after a timeout';
          this.#setState(slot, 'draining');
        }
        this.#dispatch();
        this.#observe();
        if (slot.inFlight > 0) return;
        if (slot.state === 'draining')
          this.#stop(slot, this.#retired ? 'revision retired' : (slot.stopReason ?? 'recycled after a timeout'));
        else if (this.#retired && this.#held.length === 0) this.#stop(slot, 'revision retired');
      },
    };
  }

  /** Hands free slots to held requests, in arrival order. */
  #dispatch(): void {
    while (this.#held.length > 0) {
      const slot = this.#pickReady();
      if (!slot) return;
      const waiter = this.#held.next()!;
      this.#leaseReady(slot, true).then(waiter.resolve, waiter.reject);
    }
  }

  /** Concurrency seen by the autoscaler: requests in instances plus held ones. */
  #observe(): void {
    this.#autoscaler.collector.set(this.#deps.clock.now(), this.#active + this.#held.length);
  }

  #counts(): { ready: number; starting: number; draining: number } {
    return countSlots(this.#slots.values());
  }

  #decide(now: number, extraDemand: number, burst = false): void {
    const { ready, starting } = this.#counts();
    // A burst decision only fills up: scaling down stays with the once-a-second tick.
    this.#actuate(this.#autoscaler.decide(now, ready, starting, extraDemand, burst).desired, !burst);
  }

  /**
   * Starts instances until `desired` are live (ready or starting); with `down`, drains the
   * surplus. Only a decision scales down: the other callers (a crash, a held request) only fill up.
   */
  #actuate(desired: number, down = false): void {
    if (this.#retired) return;
    // The activator's promise: a held request always has an instance on its way.
    const want = this.#held.length > 0 ? Math.max(1, desired) : desired;
    const { ready, starting } = this.#counts();
    let missing = want - ready - starting;
    if (missing > 0) {
      // Taking back an instance being drained is cheaper than starting one.
      for (const slot of this.#slots.values()) {
        if (missing === 0) break;
        if (slot.state !== 'draining' || !slot.cancelDrain) continue;
        slot.cancelDrain();
        slot.cancelDrain = undefined;
        slot.stopReason = undefined;
        this.#setState(slot, 'ready');
        missing--;
      }
      this.#dispatch();
      if (!this.#cancelRetry) for (let i = 0; i < missing; i++) this.#start();
      return;
    }
    if (!down) return;
    const readySlots = [...this.#slots.values()].filter((s) => s.state === 'ready');
    for (const id of instancesToDrain(readySlots, Math.min(-missing, readySlots.length)))
      this.#drain(this.#slots.get(id)!);
  }

  /** Takes `slot` out of rotation; it stops once its requests finish, or after the function's timeout. */
  #drain(slot: Slot): void {
    this.#setState(slot, 'draining');
    slot.stopReason = 'scaled down';
    if (slot.inFlight === 0) {
      this.#stop(slot, 'scaled down');
      return;
    }
    // Requests are aborted by the gateway at their deadline; this is the backstop. Upgraded
    // connections are not stuck requests: the last one to close stops the instance (release).
    const cancel = this.#deps.clock.setTimer(() => {
      if (slot.state === 'draining' && slot.inFlight > (slot.longLived ?? 0))
        this.#stop(slot, 'scaled down; requests outlived the timeout');
    }, this.plan.spec.timeoutMs + 1000);
    slot.cancelDrain = cancel;
  }

  #start(): void {
    const now = this.#deps.clock.now();
    const id = newId(`${this.plan.function}-${this.plan.revision}`, 4);
    const slot = newSlot(id, now);
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
    this.#ended.unshift(endedInfo(slot, this.plan, state, reason, this.#deps.clock.now()));
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
    if (!this.#hasLive()) this.#held.failAll(err);
    this.#notifyEmpty();
    if (this.#retired) return;
    // Crash-looping revisions back off exponentially instead of spinning the node.
    const delay = restartBackoffMs(this.#startFailures);
    this.#cancelRetry = this.#deps.clock.setTimer(() => {
      this.#cancelRetry = undefined;
      this.#actuate(this.#autoscaler.desired);
    }, delay);
  }

  /** The latest start error, for `nimbus get` (cleared by a successful start). */
  get lastStartError(): string | undefined {
    return this.#startFailures > 0 ? this.#lastStartError?.message : undefined;
  }

  #stop(slot: Slot, why: string): void {
    if (slot.state === 'stopping') return;
    slot.cancelDrain?.();
    slot.cancelDrain = undefined;
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

  #emptyWaiters: (() => void)[] = [];
  #whenEmpty(): Promise<void> {
    if (this.#slots.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }
  #notifyEmpty(): void {
    if (this.#slots.size === 0) for (const r of this.#emptyWaiters.splice(0)) r();
  }
}
