import type { AutoscaleSettings } from './settings.js';

/**
 * What the collector saw of one revision at `now`, in the units of `settings.metric`.
 * `stable`/`panic` are null when there is no data yet (nothing observed since the revision was
 * set up or last went quiet at zero): a value, not an error; the decider then keeps the current
 * size.
 */
export interface Observation {
  /** Instances ready to serve (not starting, not draining). */
  ready: number;
  /** Instances starting now; with `ready`, what "keep the current size" means. */
  starting: number;
  /** Average over the stable window. */
  stable: number | null;
  /** Average over the panic window. */
  panic: number | null;
  /** Last moment a request was in flight or held (now, while one is). */
  lastActiveAt: number;
  /**
   * Demand from outside the gateway in metric units (e.g. async jobs queued for the revision),
   * added to both windows. Optional: 0 when absent.
   */
  extraDemand?: number;
}

/** What the decider remembers between decisions (Knative's panicTime, maxPanicPods, delay window). */
export interface DeciderState {
  /** Last decision that was over the panic threshold; undefined when not panicking. */
  panicAt?: number;
  /** Highest desire while panicking: panic never scales down. */
  maxPanic: number;
  /** Recent desires, for the scale-down delay: the highest one within the delay wins. */
  recent: { at: number; desired: number }[];
}

export interface Decision {
  /** Instances wanted now, within [min, max]. */
  desired: number;
  panic: boolean;
  /** The window averages used (extra demand included); null when there was no data. */
  stable: number | null;
  panicValue: number | null;
  /** Desire from each window alone, after the rate limits; undefined when there was no data. */
  desiredStable?: number;
  desiredPanic?: number;
  /** Why `desired` is what it is, when a rule other than the windows decided it. */
  reason?: 'no data' | 'scale-to-zero grace' | 'idle' | 'scale-down delay' | 'panic hold';
  state: DeciderState;
}

/** The state of a fresh decider. A revision set up with several instances starts in panic, like Knative's, so it keeps them until it has a window of data. */
export function initialDeciderState(now: number, instances: number): DeciderState {
  return instances > 1 ? { panicAt: now, maxPanic: instances, recent: [] } : { maxPanic: 0, recent: [] };
}

/**
 * Knative KPA's decision (pkg/autoscaler/scaling/autoscaler.go), pure: the same inputs give the
 * same decision, and time comes only from `now`.
 *
 * - desire per window = ceil(value / (target × targetUtilization)), limited to
 *   [floor(ready / maxScaleDownRate), ceil(ready × maxScaleUpRate)] (ready counted as ≥ 1);
 * - panic starts when the panic-window desire reaches panicThreshold × ready, and lasts until a
 *   full stable window has passed since the last time it was over; while panicking the larger of
 *   both desires is used and the count never goes down;
 * - a scale-down is applied only once it held for scaleDownDelay;
 * - zero only after idleTimeout without a request (the scale-to-zero grace): until then at least
 *   one instance stays; after it the windows no longer count (they still remember the traffic);
 * - finally bounded by [min, max].
 */
export function decide(settings: AutoscaleSettings, observed: Observation, now: number, prev: DeciderState): Decision {
  const live = observed.ready + observed.starting;
  if (observed.stable === null || observed.panic === null) {
    return {
      desired: clamp(Math.max(live, prev.maxPanic), settings),
      panic: prev.panicAt !== undefined,
      stable: null,
      panicValue: null,
      reason: 'no data',
      state: prev,
    };
  }
  const extra = observed.extraDemand ?? 0;
  const idle = now - observed.lastActiveAt >= settings.idleTimeoutMs;
  const quiet = idle && extra <= 0;
  const stable = quiet ? 0 : observed.stable + extra;
  const panicValue = quiet ? 0 : observed.panic + extra;

  const readyCount = Math.max(1, observed.ready);
  const maxUp = Math.ceil(settings.maxScaleUpRate * readyCount);
  const maxDown = Math.floor(readyCount / settings.maxScaleDownRate);
  const perInstance = settings.target * settings.targetUtilization;
  const dspc = Math.ceil(stable / perInstance);
  const dppc = Math.ceil(panicValue / perInstance);
  const desiredStable = Math.min(Math.max(dspc, maxDown), maxUp);
  const desiredPanic = Math.min(Math.max(dppc, maxDown), maxUp);

  const over = dppc / readyCount >= settings.panicThreshold;
  let panicAt = prev.panicAt;
  let maxPanic = prev.maxPanic;
  if (over) panicAt = now;
  else if (panicAt !== undefined && panicAt + settings.stableWindowMs < now) {
    panicAt = undefined;
    maxPanic = 0;
  }

  let desired = desiredStable;
  let reason: Decision['reason'];
  if (panicAt !== undefined) {
    desired = Math.max(desiredStable, desiredPanic);
    if (desired > maxPanic) maxPanic = desired;
    else if (desired < maxPanic) reason = 'panic hold';
    desired = maxPanic;
  }

  let recent = prev.recent;
  if (settings.scaleDownDelayMs > 0) {
    recent = [...prev.recent.filter((r) => r.at > now - settings.scaleDownDelayMs), { at: now, desired }];
    const held = Math.max(...recent.map((r) => r.desired));
    if (held > desired) {
      desired = held;
      reason = 'scale-down delay';
    }
  }

  // The grace: the stable window decays to 0 before idleTimeout has passed (or a long timeout
  // keeps one instance around); keep one until the revision has been idle for idleTimeout.
  if (desired === 0 && live > 0 && !idle) {
    desired = 1;
    reason = 'scale-to-zero grace';
  } else if (quiet && live > 0 && desired < live && reason === undefined) reason = 'idle';

  return {
    desired: clamp(desired, settings),
    panic: panicAt !== undefined,
    stable,
    panicValue,
    desiredStable,
    desiredPanic,
    reason,
    state: { panicAt, maxPanic, recent },
  };
}

function clamp(n: number, s: AutoscaleSettings): number {
  return Math.min(s.max, Math.max(s.min, n));
}
