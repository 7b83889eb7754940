/**
 * One revision's instance slots as data: the slot record and the queries the pool makes over a
 * set of them (which one takes the next request, how many are live, what the API shows). Kept
 * apart from RevisionPool so the pool holds only the decisions: when to start, lease, drain, stop.
 */
import type { Instance } from '../runtime/types.js';
import type { Freezable } from './freezer.js';
import type { EndedInstanceInfo, InstanceInfo, RevisionPlan, SlotState } from './types.js';

/** One instance of a revision as the pool tracks it, from `starting` to `stopping`. */
export interface Slot extends Freezable {
  id: string;
  state: SlotState;
  stateSince: number;
  /** Why the platform is stopping it. */
  stopReason?: string;
  instance?: Instance;
  inFlight: number;
  /** Of those, leases that may outlive the timeout (upgraded connections): a drain waits for them. */
  longLived?: number;
  requests: number;
  startedAt: number;
  readyAt?: number;
  lastUsedAt: number;
  /** Set while drained by a scale-down: stops it if requests outlive the function's timeout. */
  cancelDrain?: () => void;
}

/** A fresh slot for an instance being started at `now`. */
export function newSlot(id: string, now: number): Slot {
  return { id, state: 'starting', stateSince: now, inFlight: 0, requests: 0, startedAt: now, lastUsedAt: now };
}

/**
 * The ready slot that takes the next request: the least loaded under `concurrency`, and among
 * equals one that is running rather than frozen (no thaw on the request's path). Undefined when
 * every ready slot is full.
 */
export function pickReady(slots: Iterable<Slot>, concurrency: number): Slot | undefined {
  let best: Slot | undefined;
  for (const s of slots) {
    if (s.state !== 'ready' || s.inFlight >= concurrency) continue;
    if (!best || s.inFlight < best.inFlight || (s.inFlight === best.inFlight && best.frozen && !s.frozen)) best = s;
  }
  return best;
}

/** Slots per state, leaving out those already stopping. */
export function countSlots(slots: Iterable<Slot>): { ready: number; starting: number; draining: number } {
  const n = { ready: 0, starting: 0, draining: 0 };
  for (const s of slots) if (s.state !== 'stopping') n[s.state]++;
  return n;
}

/** True when a slot is ready or starting: something will serve a held request. */
export function hasLive(slots: Iterable<Slot>): boolean {
  for (const s of slots) if (s.state === 'ready' || s.state === 'starting') return true;
  return false;
}

/**
 * Requests the live slots can still take without a new instance: free places on ready ones plus
 * every place on those starting. Held requests beyond it need the autoscaler now.
 */
export function spareCapacity(slots: Iterable<Slot>, concurrency: number): number {
  let spare = 0;
  for (const s of slots) {
    if (s.state === 'ready') spare += Math.max(0, concurrency - s.inFlight);
    else if (s.state === 'starting') spare += concurrency;
  }
  return spare;
}

/** What the API shows of a live slot; a ready one is `busy` with requests in flight, `frozen` when suspended. */
export function slotInfo(s: Slot, plan: RevisionPlan): InstanceInfo {
  return {
    id: s.id,
    function: plan.function,
    revision: plan.revision,
    state: s.state === 'ready' && s.inFlight > 0 ? 'busy' : s.state === 'ready' && s.frozen ? 'frozen' : s.state,
    stateSince: iso(s.stateSince)!,
    inFlight: s.inFlight,
    requests: s.requests,
    startedAt: iso(s.startedAt)!,
    readyAt: iso(s.readyAt),
    lastUsedAt: s.requests > 0 ? iso(s.lastUsedAt) : undefined,
    pid: s.instance?.pid,
    startMode: s.instance ? (s.instance.startMode ?? 'spawn') : undefined,
  };
}

/** The record kept of a slot that ended at `now`. */
export function endedInfo(
  s: Slot,
  plan: RevisionPlan,
  state: 'stopped' | 'crashed',
  reason: string,
  now: number,
): EndedInstanceInfo {
  return {
    id: s.id,
    function: plan.function,
    revision: plan.revision,
    state,
    startedAt: iso(s.startedAt)!,
    endedAt: iso(now)!,
    requests: s.requests,
    reason,
  };
}

function iso(t?: number): string | undefined {
  return t === undefined ? undefined : new Date(t).toISOString();
}
