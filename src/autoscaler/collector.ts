/** One closed sample: a second (usually) of a revision's traffic. */
interface Bucket {
  start: number;
  end: number;
  /** Time-weighted average concurrency over [start, end). */
  concurrency: number;
  requests: number;
}

/** Window averages of both metrics; null when there is no data yet. */
export interface WindowValues {
  concurrency: number | null;
  rps: number | null;
}

/**
 * Per-revision samples for the decider (Knative's metric collector and timed buckets in one).
 * The pool reports every change of concurrency (requests in flight plus held ones) and every
 * arrival; `tick` closes a sample each second. Concurrency is integrated over time, so a request
 * that lasts 10 ms counts as 0.01 of a second, not as a whole one.
 *
 * Like Knative, a revision at zero writes no samples (nobody reports): when traffic comes back
 * after a quiet stable window, history starts again and windows average over the part that
 * exists, so a burst from zero shows at full height at once instead of diluted by old zeros.
 */
export class MetricCollector {
  readonly #windowMs: number;
  #buckets: Bucket[] = [];
  #lastWrite?: number;
  #start: number;
  #area = 0;
  #requests = 0;
  #current = 0;
  #lastChange: number;
  #lastActive: number;

  /** `now`: when the revision was set up (counts as activity, for the scale-to-zero grace). */
  constructor(now: number, stableWindowMs: number) {
    this.#windowMs = stableWindowMs;
    this.#start = this.#lastChange = this.#lastActive = now;
  }

  /** Concurrency now (in flight + held). */
  get concurrency(): number {
    return this.#current;
  }

  /** Last moment something was in flight or held. */
  lastActiveAt(now: number): number {
    return this.#current > 0 ? now : this.#lastActive;
  }

  /** Concurrency became `n` at `now`. */
  set(now: number, n: number): void {
    this.#wake(now);
    this.#area += this.#current * (now - this.#lastChange);
    this.#lastChange = now;
    if (this.#current > 0 || n > 0) this.#lastActive = now;
    this.#current = n;
  }

  /** A request arrived at `now`. */
  request(now: number): void {
    this.#wake(now);
    this.#requests++;
  }

  /**
   * Closes the current sample at `now`. `live`: the revision has instances; at zero, a sample
   * with no traffic is not written.
   */
  tick(now: number, live: boolean): void {
    this.#area += this.#current * (now - this.#lastChange);
    this.#lastChange = now;
    const duration = now - this.#start;
    const active = this.#area > 0 || this.#requests > 0 || this.#current > 0;
    if (duration > 0 && (live || active)) {
      if (this.#lastWrite !== undefined && this.#start - this.#lastWrite > this.#windowMs) this.#buckets = [];
      this.#buckets.push({
        start: this.#start,
        end: now,
        concurrency: this.#area / duration,
        requests: this.#requests,
      });
      this.#lastWrite = now;
      const from = now - this.#windowMs;
      while (this.#buckets.length > 0 && this.#buckets[0]!.end <= from) this.#buckets.shift();
    }
    this.#start = now;
    this.#area = 0;
    this.#requests = 0;
  }

  /** Averages over the last `windowMs` (or the part of it with data). */
  window(now: number, windowMs: number): WindowValues {
    const from = now - windowMs;
    let first = Number.POSITIVE_INFINITY;
    let area = 0;
    let requests = 0;
    for (const b of this.#buckets) {
      const overlap = Math.min(b.end, now) - Math.max(b.start, from);
      if (overlap <= 0) continue;
      first = Math.min(first, Math.max(b.start, from));
      area += b.concurrency * overlap;
      requests += (b.requests * overlap) / (b.end - b.start);
    }
    const partialActive = this.#area > 0 || this.#requests > 0 || this.#current > 0;
    if (partialActive || first !== Number.POSITIVE_INFINITY) {
      // The open sample is at most a tick long, shorter than any window: counted whole.
      first = Math.min(first, this.#start);
      area += this.#area + this.#current * (now - this.#lastChange);
      requests += this.#requests;
    }
    if (first === Number.POSITIVE_INFINITY) return { concurrency: null, rps: null };
    const span = now - first;
    return {
      // A window with no length yet (the first request of a burst) is the concurrency right now.
      concurrency: span > 0 ? area / span : this.#current,
      // Rates over less than a second would turn one request into a thousand per second.
      rps: (requests * 1000) / Math.max(1000, span),
    };
  }

  /** A revision back from quiet at zero starts its history again, at its first request. */
  #wake(now: number): void {
    if (this.#current > 0 || this.#area > 0 || this.#requests > 0) return;
    const stale = this.#lastWrite === undefined || now - this.#lastWrite > this.#windowMs;
    if (!stale) return;
    this.#buckets = [];
    this.#lastWrite = undefined;
    this.#start = this.#lastChange = now;
  }
}
