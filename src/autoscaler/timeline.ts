import { MetricCollector } from './collector.js';
import { type DeciderState, type Decision, decide, initialDeciderState } from './decider.js';
import type { AutoscaleSettings } from './settings.js';

/** One second of a replayed timeline: the load put on the revision, and what was decided after it. */
export interface TimelineStep {
  /** Second since the start. */
  t: number;
  load: number;
  ready: number;
  decision: Decision;
}

export interface TimelineOptions {
  /** Concurrency (in flight + held) during second `t`. */
  load(t: number): number;
  /** Requests arriving during second `t` (for the rps metric). Default none. */
  arrivals?(t: number): number;
  seconds: number;
  /** Seconds an instance takes to become ready. Default 0 (ready at the next decision). */
  startDelay?: number;
  extraDemand?(t: number): number;
  /** Instances live at the start (as if `initial`). Default 0. */
  initial?: number;
}

/**
 * Replays a timeline against the collector and decider with a simulated clock, one decision per
 * second, instances following the decisions (started ones ready after `startDelay`, drained ones
 * gone at once). Minutes of traffic replay in milliseconds: for tests and for trying settings.
 */
export function replay(settings: AutoscaleSettings, options: TimelineOptions): TimelineStep[] {
  const collector = new MetricCollector(0, settings.stableWindowMs);
  let state: DeciderState = initialDeciderState(0, options.initial ?? 0);
  let ready = options.initial ?? 0;
  const starting: number[] = [];
  const steps: TimelineStep[] = [];
  for (let t = 0; t < options.seconds; t++) {
    const at = t * 1000;
    const load = options.load(t);
    collector.set(at, load);
    for (let i = 0; i < (options.arrivals?.(t) ?? 0); i++) collector.request(at);
    const end = at + 1000;
    while (starting.length > 0 && starting[0]! <= end) {
      starting.shift();
      ready++;
    }
    collector.tick(end, ready + starting.length > 0);
    const decision = decide(
      settings,
      {
        ready,
        starting: starting.length,
        ...windows(collector, settings, end),
        lastActiveAt: collector.lastActiveAt(end),
        extraDemand: options.extraDemand?.(t),
      },
      end,
      state,
    );
    state = decision.state;
    const live = ready + starting.length;
    if (decision.desired > live) {
      const delay = (options.startDelay ?? 0) * 1000;
      for (let i = live; i < decision.desired; i++) {
        if (delay === 0) ready++;
        else starting.push(end + delay);
      }
    } else ready = Math.max(0, ready - (live - decision.desired));
    steps.push({ t, load, ready, decision });
  }
  return steps;
}

function windows(collector: MetricCollector, s: AutoscaleSettings, now: number) {
  return {
    stable: collector.window(now, s.stableWindowMs)[s.metric],
    panic: collector.window(now, s.panicWindowMs)[s.metric],
  };
}
