import type { ScaleConfig } from '../core/types.js';

/** What the autoscaler scales on: in-flight requests per instance, or requests per second. */
export type ScaleMetric = 'concurrency' | 'rps';

/**
 * Knative's KPA defaults, used where the manifest says nothing. Two differ on purpose and are
 * documented in docs/autoscaling.md: `initial` is `min` (0), not 1, because on one node an
 * instance per deploy costs memory for nothing; the scale-to-zero grace is `idleTimeout` (300 s,
 * Nimbus' earlier idle reaping), not 30 s.
 */
export const AUTOSCALE_DEFAULTS = {
  metric: 'concurrency' as ScaleMetric,
  /** Knative's container-concurrency-target-percentage. */
  targetUtilization: 0.7,
  /** Knative's requests-per-second-target-default. */
  rpsTarget: 200,
  /** Knative's stable-window. */
  windowSeconds: 60,
  /** Knative's panic-window-percentage: the panic window is this share of the stable window. */
  panicWindowShare: 0.1,
  /** Knative's panic-threshold-percentage (200%). */
  panicThreshold: 2,
  /** Knative's max-scale-up-rate and max-scale-down-rate. */
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
  scaleDownDelaySeconds: 0,
} as const;

/** Bounds of the scale fields the manifest may set (checked in src/build/fields.ts). */
export const SCALE_LIMITS = {
  target: [0.01, 100_000],
  targetUtilization: [0.01, 1],
  window: [6, 3600],
  scaleDownDelay: [0, 3600],
  maxQueue: [0, 1_000_000],
} as const;

/** Everything the decider needs about one revision, in milliseconds and metric units. */
export interface AutoscaleSettings {
  min: number;
  max: number;
  /** Instances started when the revision is first set up (at least `min`). */
  initial: number;
  metric: ScaleMetric;
  /** Metric value one instance is sized for (before utilisation). */
  target: number;
  /** Share of `target` aimed at, so an instance has headroom for a burst (0.7). */
  targetUtilization: number;
  stableWindowMs: number;
  panicWindowMs: number;
  /** Enter panic when panic-window desire / ready instances reaches this (2 = 200%). */
  panicThreshold: number;
  maxScaleUpRate: number;
  maxScaleDownRate: number;
  /** A lower desire is applied only after it held for this long (Knative's scale-down-delay). */
  scaleDownDelayMs: number;
  /** No request in flight or held for this long: the revision may go to zero (scale-to-zero grace). */
  idleTimeoutMs: number;
}

/**
 * The decider's settings for a revision. Tolerates a ScaleConfig stored before the autoscaler
 * (only min, max, idleTimeout): every missing field takes its default. `concurrency` is the
 * function's hard per-instance limit: the default concurrency target, and its ceiling.
 */
export function autoscaleSettings(scale: ScaleConfig, concurrency: number): AutoscaleSettings {
  const metric = scale.metric ?? AUTOSCALE_DEFAULTS.metric;
  const defaultTarget = metric === 'concurrency' ? concurrency : AUTOSCALE_DEFAULTS.rpsTarget;
  let target = scale.target ?? defaultTarget;
  if (metric === 'concurrency') target = Math.min(target, concurrency);
  const windowMs = (scale.window ?? AUTOSCALE_DEFAULTS.windowSeconds) * 1000;
  return {
    min: scale.min,
    max: Math.max(scale.min, scale.max),
    initial: Math.min(scale.max, Math.max(scale.min, scale.initial ?? scale.min)),
    metric,
    target,
    targetUtilization: scale.targetUtilization ?? AUTOSCALE_DEFAULTS.targetUtilization,
    stableWindowMs: windowMs,
    panicWindowMs: Math.max(1000, windowMs * AUTOSCALE_DEFAULTS.panicWindowShare),
    panicThreshold: AUTOSCALE_DEFAULTS.panicThreshold,
    maxScaleUpRate: AUTOSCALE_DEFAULTS.maxScaleUpRate,
    maxScaleDownRate: AUTOSCALE_DEFAULTS.maxScaleDownRate,
    scaleDownDelayMs: (scale.scaleDownDelay ?? AUTOSCALE_DEFAULTS.scaleDownDelaySeconds) * 1000,
    idleTimeoutMs: scale.idleTimeout * 1000,
  };
}
