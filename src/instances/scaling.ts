/**
 * The actuator's side of the autoscaler: per-revision glue between the pool and the pure
 * collector + decider in src/autoscaler, and the choice of which instances to drain.
 */
import {
  type AutoscaleSettings,
  autoscaleSettings,
  type DeciderState,
  type Decision,
  decide,
  initialDeciderState,
  MetricCollector,
} from '../autoscaler/index.js';
import { openWindow } from '../autoscaler/schedule.js';
import type { ScaleSchedule } from '../core/types.js';
import type { RevisionPlan } from './types.js';

/** What the API and metrics show of one revision's autoscaler. */
export interface ScaleView {
  function: string;
  revision: string;
  metric: AutoscaleSettings['metric'];
  /** Target per instance, before utilisation. */
  target: number;
  targetUtilization: number;
  /** The minimum in force now: `scale.min`, or higher while a scheduled-warming window is open. */
  min: number;
  max: number;
  /** The open scheduled-warming window raising `min`, when there is one. */
  scheduled?: { min: number; until: string };
  desired: number;
  ready: number;
  starting: number;
  draining: number;
  panic: boolean;
  /** Window averages: concurrency includes held requests; null while there is no data. */
  observed: {
    concurrency: { stable: number | null; panic: number | null; now: number };
    rps: { stable: number | null; panic: number | null };
    extraDemand: number;
  };
  /** The activator: requests held for a slot, and how many may be. */
  queue: { length: number; limit: number };
  /** Why `desired` is what it is, when not simply the windows (e.g. "scale-to-zero grace"). */
  reason?: string;
  decidedAt?: string;
}

/** One revision's autoscaler: a collector, the decider's state, and the last decision. */
export class RevisionAutoscaler {
  readonly settings: AutoscaleSettings;
  readonly collector: MetricCollector;
  readonly #schedules?: ScaleSchedule[];
  #state: DeciderState;
  #initial: number;
  #last?: Decision & { at: number; extraDemand: number };

  constructor(plan: RevisionPlan, now: number) {
    this.settings = autoscaleSettings(plan.scale, plan.concurrency);
    this.#schedules = plan.scale.schedule;
    this.collector = new MetricCollector(now, this.settings.stableWindowMs);
    // A revision set up inside a warming window starts with the window's instances.
    this.#initial = Math.max(this.settings.initial, this.minAt(now));
    this.#state = initialDeciderState(now, this.settings.initial);
  }

  /** The minimum in force at `now`: `scale.min`, raised by an open scheduled-warming window (≤ max). */
  minAt(now: number): number {
    const s = this.settings;
    return Math.min(s.max, Math.max(s.min, openWindow(this.#schedules, now)?.min ?? 0));
  }

  /**
   * Runs the decider at `now` for a revision with these instance counts. `burst`: decided at once
   * because held requests outgrew the spare capacity; the panic window then counts at least the
   * concurrency right now (in flight + held), which the window will only have averaged in seconds later.
   */
  decide(now: number, ready: number, starting: number, extraDemand: number, burst = false): Decision {
    const s = { ...this.settings, min: this.minAt(now) };
    const stable = this.collector.window(now, s.stableWindowMs);
    const panic = this.collector.window(now, s.panicWindowMs);
    let panicValue = panic[s.metric];
    if (burst && s.metric === 'concurrency') panicValue = Math.max(panicValue ?? 0, this.collector.concurrency);
    const decision = decide(
      s,
      {
        ready,
        starting,
        stable: stable[s.metric],
        panic: panicValue,
        lastActiveAt: this.collector.lastActiveAt(now),
        extraDemand,
      },
      now,
      this.#state,
    );
    this.#state = decision.state;
    this.#last = { ...decision, at: now, extraDemand };
    return decision;
  }

  /** The last decision's desire; before any, `initial` (raised by a warming window open at set-up). */
  get desired(): number {
    return this.#last?.desired ?? this.#initial;
  }

  /** Demand from elsewhere given to the last decision. */
  get extraDemand(): number {
    return this.#last?.extraDemand ?? 0;
  }

  view(
    plan: RevisionPlan,
    now: number,
    counts: { ready: number; starting: number; draining: number; queue: number; queueLimit: number },
  ): ScaleView {
    const s = this.settings;
    const stable = this.collector.window(now, s.stableWindowMs);
    const panic = this.collector.window(now, s.panicWindowMs);
    const window = openWindow(this.#schedules, now);
    return {
      function: plan.function,
      revision: plan.revision,
      metric: s.metric,
      target: s.target,
      targetUtilization: s.targetUtilization,
      min: this.minAt(now),
      max: s.max,
      ...(window ? { scheduled: { min: window.min, until: new Date(window.until).toISOString() } } : {}),
      desired: this.desired,
      ready: counts.ready,
      starting: counts.starting,
      draining: counts.draining,
      panic: this.#last?.panic ?? this.#state.panicAt !== undefined,
      observed: {
        concurrency: { stable: stable.concurrency, panic: panic.concurrency, now: this.collector.concurrency },
        rps: { stable: stable.rps, panic: panic.rps },
        extraDemand: this.#last?.extraDemand ?? 0,
      },
      queue: { length: counts.queue, limit: counts.queueLimit },
      reason: this.#last?.reason,
      decidedAt: this.#last ? new Date(this.#last.at).toISOString() : undefined,
    };
  }
}

/** A ready instance that could be drained. */
export interface DrainCandidate {
  id: string;
  inFlight: number;
  frozen?: boolean;
  lastUsedAt: number;
}

/**
 * Which `n` ready instances to drain on a scale-down: those with the fewest requests in flight
 * (they finish soonest), frozen ones first among equals (they cost nothing to stop), then the
 * longest unused.
 */
export function instancesToDrain(candidates: DrainCandidate[], n: number): string[] {
  if (n <= 0) return [];
  return [...candidates]
    .sort(
      (a, b) =>
        a.inFlight - b.inFlight || Number(Boolean(b.frozen)) - Number(Boolean(a.frozen)) || a.lastUsedAt - b.lastUsedAt,
    )
    .slice(0, n)
    .map((c) => c.id);
}

/** Delay before retrying a start after `failures` consecutive failed starts: 1 s doubling to 60 s. */
export function restartBackoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(60_000, 1000 * 2 ** (failures - 1));
}
