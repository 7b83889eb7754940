import { NimbusError } from './errors.js';
import type { FunctionRecord, RolloutSettings, TrafficTarget } from './types.js';

/** Defaults of a rollout, for `deploy --canary` and for fields a `rollout:` block leaves out. */
export const ROLLOUT_DEFAULTS: Readonly<RolloutSettings> = Object.freeze({
  steps: [5, 25, 50, 100],
  interval: 60,
  maxErrorRateIncrease: 5,
  maxP95Ratio: 1.5,
  p95FloorMs: 20,
  minRequests: 20,
});

/** What a function without a spec does: everything to the newest released revision. */
export const DEFAULT_TRAFFIC: readonly TrafficTarget[] = Object.freeze([Object.freeze({ latest: true, percent: 100 })]);

const TAG_RE = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** `r3`: every revision answers to its own id as a tag, so user tags may not look like one. */
export const REVISION_ID_RE = /^r[1-9][0-9]*$/;

/** A function's spec, defaulted. */
export function trafficOf(fn: FunctionRecord): readonly TrafficTarget[] {
  return fn.traffic ?? DEFAULT_TRAFFIC;
}

/** The revision `latest` stands for: the newest released one. */
export function latestReleased(fn: FunctionRecord): string {
  return fn.latestReady ?? fn.latestRevision;
}

/** A spec with `latest` replaced by the revision it stands for now: who gets what, concretely. */
export interface EffectiveTraffic {
  /** Revision → whole percent, only revisions with a share > 0, in spec order. */
  weights: Map<string, number>;
  /** Tag → revision. */
  tags: Map<string, string>;
}

export function effectiveTraffic(fn: FunctionRecord): EffectiveTraffic {
  const weights = new Map<string, number>();
  const tags = new Map<string, string>();
  for (const t of trafficOf(fn)) {
    const revision = t.latest ? latestReleased(fn) : t.revision!;
    if (t.percent > 0) weights.set(revision, (weights.get(revision) ?? 0) + t.percent);
    if (t.tag) tags.set(t.tag, revision);
  }
  return { weights, tags };
}

/** Every revision the spec routes to (by share or by tag): these stay warm and are never retired. */
export function referencedRevisions(fn: FunctionRecord): Set<string> {
  const { weights, tags } = effectiveTraffic(fn);
  return new Set([...weights.keys(), ...tags.values()]);
}

const invalid = (message: string) => new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `traffic: ${message}`);
const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/**
 * Checks a traffic spec strictly and returns it normalised (known fields only, `latest: true` or
 * `revision`, whole percents summing to 100, unique DNS-label tags that do not look like a
 * revision id, revisions that exist). Throws NIMBUS_ERR_INVALID_REQUEST naming the entry and field.
 */
export function validateTraffic(raw: unknown, revisions: ReadonlySet<string>): TrafficTarget[] {
  if (!Array.isArray(raw) || raw.length === 0)
    throw invalid(
      `expected a non-empty list of targets such as [{"revision": "r3", "percent": 100}], got ${show(raw)}`,
    );
  const out: TrafficTarget[] = [];
  const tags = new Set<string>();
  let sum = 0;
  raw.forEach((entry: unknown, i) => {
    const at = `[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw invalid(`${at}: expected an object with revision or latest, and percent`);
    const { revision, latest, percent, tag, ...rest } = entry as Record<string, unknown>;
    for (const key of Object.keys(rest))
      throw invalid(`${at}: unknown field ${show(key)}; known fields: revision, latest, percent, tag`);
    if (latest !== undefined && latest !== true && latest !== false)
      throw invalid(`${at}.latest: expected true, got ${show(latest)}`);
    const target: TrafficTarget = { percent: 0 };
    if (latest === true) {
      if (revision !== undefined) throw invalid(`${at}: give revision or latest: true, not both`);
      target.latest = true;
    } else {
      if (typeof revision !== 'string') throw invalid(`${at}: revision (e.g. "r3") or latest: true is required`);
      if (!revisions.has(revision))
        throw invalid(`${at}.revision: no revision ${show(revision)}; this function has ${[...revisions].join(', ')}`);
      target.revision = revision;
    }
    if (percent === undefined && tag !== undefined) target.percent = 0;
    else if (typeof percent !== 'number' || !Number.isInteger(percent) || percent < 0 || percent > 100)
      throw invalid(`${at}.percent: expected a whole number from 0 to 100, got ${show(percent)}`);
    else target.percent = percent;
    if (tag !== undefined) {
      if (typeof tag !== 'string' || !TAG_RE.test(tag))
        throw invalid(`${at}.tag: expected a DNS label (lowercase letters, digits and dashes, 1-63), got ${show(tag)}`);
      if (REVISION_ID_RE.test(tag))
        throw invalid(`${at}.tag: ${show(tag)} looks like a revision id; every revision is reachable as @ID already`);
      if (tags.has(tag)) throw invalid(`${at}.tag: ${show(tag)} is used twice`);
      tags.add(tag);
      target.tag = tag;
    }
    if (target.percent === 0 && !target.tag) throw invalid(`${at}: a target with 0 percent needs a tag`);
    sum += target.percent;
    out.push(target);
  });
  if (sum !== 100) throw invalid(`percents must sum to 100, got ${sum}`);
  return out;
}

/**
 * A weighted choice: `weights` are positive, `random` in [0, 1). Returns the chosen index.
 * Cumulative bounds, so a 90/10 split sends [0, 0.9) to the first and [0.9, 1) to the second.
 */
export function pickWeighted(weights: readonly number[], random: number): number {
  let total = 0;
  for (const w of weights) total += w;
  let point = random * total;
  for (let i = 0; i < weights.length; i++) {
    point -= weights[i]!;
    if (point < 0) return i;
  }
  return weights.length - 1;
}

/**
 * Scales whole percents to `total` keeping their proportions (largest remainder), so a canary's
 * steps can shrink any stable spec: scale([50, 50], 95) = [48, 47].
 */
export function scalePercents(percents: readonly number[], total: number): number[] {
  const sum = percents.reduce((a, b) => a + b, 0);
  if (sum === 0) return percents.map(() => 0);
  const exact = percents.map((p) => (p * total) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    out[i]!++;
    left--;
  }
  return out;
}
