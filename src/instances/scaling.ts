/**
 * The first-cut scaling decision, kept pure and in one place so the Knative-style autoscaler
 * (a later issue) can replace it without touching the pool's mechanics.
 */

export interface ScaleObservation {
  /** Instances serving or able to serve (ready, not draining). */
  ready: number;
  starting: number;
  /** Requests being served now. */
  inFlight: number;
  /** Requests held, waiting for a slot. */
  waiting: number;
  concurrency: number;
  min: number;
  max: number;
}

/** How many instances to start now: enough slots for every request in flight or held, within [min, max]. */
export function instancesToStart(o: ScaleObservation): number {
  const demand = Math.ceil((o.inFlight + o.waiting) / Math.max(1, o.concurrency));
  const desired = Math.min(o.max, Math.max(o.min, demand));
  return Math.max(0, desired - (o.ready + o.starting));
}

export interface IdleCandidate {
  id: string;
  inFlight: number;
  lastUsedAt: number;
}

/**
 * Which idle instances to stop at `now`: those with nothing in flight for `idleTimeoutMs`, oldest
 * use first, never going below `min` live instances.
 */
export function instancesToReap(
  candidates: IdleCandidate[],
  live: number,
  min: number,
  idleTimeoutMs: number,
  now: number,
): string[] {
  const idle = candidates
    .filter((c) => c.inFlight === 0 && now - c.lastUsedAt >= idleTimeoutMs)
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt);
  return idle.slice(0, Math.max(0, live - min)).map((c) => c.id);
}

/** Delay before retrying a start after `failures` consecutive failed starts: 1 s doubling to 60 s. */
export function restartBackoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(60_000, 1000 * 2 ** (failures - 1));
}
