import { scalePercents } from '../core/traffic.js';
import type { RolloutSettings, TrafficTarget } from '../core/types.js';
import type { WindowStats } from './types.js';

/** Requests of one revision during one step: counts plus latencies for the p95. */
export class StepWindow {
  requests = 0;
  errors = 0;
  readonly durations: number[] = [];

  add(status: number, durationMs: number): void {
    this.requests++;
    if (status >= 500) this.errors++;
    // A switched protocol (WebSocket) lasts as long as its connection: no latency to compare.
    if (status === 101) return;
    // Bounded: a busy function's step keeps a large sample, never unbounded memory.
    if (this.durations.length < 100_000) this.durations.push(durationMs);
  }

  merge(other: StepWindow): void {
    this.requests += other.requests;
    this.errors += other.errors;
    for (const d of other.durations) if (this.durations.length < 100_000) this.durations.push(d);
  }

  stats(): WindowStats {
    const errorRate = this.requests === 0 ? 0 : round((this.errors / this.requests) * 100);
    const out: WindowStats = { requests: this.requests, errors: this.errors, errorRate };
    if (this.durations.length > 0) {
      const sorted = [...this.durations].sort((a, b) => a - b);
      out.p95Ms = round(sorted[Math.ceil(sorted.length * 0.95) - 1]!);
    }
    return out;
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

/** A step's verdict: `wait` (too few canary requests yet), `pass` (step up) or `fail` (roll back). */
export interface Verdict {
  verdict: 'pass' | 'fail' | 'wait';
  reason: string;
}

/**
 * Judges one step: the canary fails when its error rate exceeds the stable one by more than
 * `maxErrorRateIncrease` points, or its p95 exceeds `maxP95Ratio` × the stable p95 (both floored
 * at `p95FloorMs`, so sub-floor noise never fails a canary). Without `minRequests` canary
 * requests it waits; with fewer stable requests than that, latency is not compared (the error
 * rate is then compared with 0).
 */
export function judge(settings: RolloutSettings, canary: WindowStats, stable: WindowStats): Verdict {
  if (canary.requests < settings.minRequests)
    return { verdict: 'wait', reason: `${canary.requests} of ${settings.minRequests} canary requests so far` };
  const stableRate = stable.requests > 0 ? stable.errorRate : 0;
  const increase = canary.errorRate - stableRate;
  if (increase > settings.maxErrorRateIncrease)
    return {
      verdict: 'fail',
      reason: `canary error rate ${canary.errorRate}% vs stable ${stableRate}% (+${round(increase)} points > ${settings.maxErrorRateIncrease})`,
    };
  const stableComparable = stable.requests >= settings.minRequests && stable.p95Ms !== undefined;
  if (stableComparable && canary.p95Ms !== undefined) {
    const c = Math.max(canary.p95Ms, settings.p95FloorMs);
    const s = Math.max(stable.p95Ms!, settings.p95FloorMs);
    if (c > s * settings.maxP95Ratio)
      return {
        verdict: 'fail',
        reason: `canary p95 ${canary.p95Ms} ms vs stable ${stable.p95Ms} ms (ratio ${round(c / s)} > ${settings.maxP95Ratio})`,
      };
  }
  const latency = stableComparable
    ? `p95 ${canary.p95Ms} ms vs ${stable.p95Ms} ms`
    : 'p95 not compared (too few stable requests)';
  return {
    verdict: 'pass',
    reason: `canary error rate ${canary.errorRate}% vs stable ${stableRate}%, ${latency}`,
  };
}

/**
 * The spec while the canary has `percent`: the original spec shrunk to 100 - percent (`latest`
 * pinned to the revision it stood for, tags kept), plus the canary.
 */
export function canarySpec(
  original: readonly TrafficTarget[],
  previousLatest: string,
  canary: string,
  percent: number,
): TrafficTarget[] {
  const scaled = scalePercents(
    original.map((t) => t.percent),
    100 - percent,
  );
  const out: TrafficTarget[] = [];
  original.forEach((t, i) => {
    const target: TrafficTarget = { revision: t.latest ? previousLatest : t.revision!, percent: scaled[i]! };
    if (t.tag) target.tag = t.tag;
    if (target.percent > 0 || target.tag) out.push(target);
  });
  out.push({ revision: canary, percent });
  return out;
}

/**
 * The spec after promotion: the original one when it follows `latest` (which now stands for the
 * canary), else everything to the canary with the original's tags kept.
 */
export function promotedSpec(original: readonly TrafficTarget[], canary: string): TrafficTarget[] {
  if (original.some((t) => t.latest)) return original.map((t) => ({ ...t }));
  const tags = original.filter((t) => t.tag).map((t) => ({ revision: t.revision!, percent: 0, tag: t.tag }));
  return [{ revision: canary, percent: 100 }, ...tags];
}

/** The stable revisions of a spec: those with a share, `latest` standing for `previousLatest`. */
export function stableRevisions(original: readonly TrafficTarget[], previousLatest: string): string[] {
  return [...new Set(original.filter((t) => t.percent > 0).map((t) => (t.latest ? previousLatest : t.revision!)))];
}
