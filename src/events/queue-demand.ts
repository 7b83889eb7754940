import type { AsyncInvocations } from './types.js';

/**
 * Async backlog as autoscaler demand (KEDA's idea): invocations that are due but not yet running
 * are load the instances will have to take, seen before the dispatcher leases them — a function at
 * zero with a backlog scales on the backlog, not one leased job at a time. Capped by the function's
 * async concurrency: more than that never runs at once, and running jobs are already in-flight
 * requests the autoscaler counts.
 */
export interface QueueDemand {
  /** Extra concurrent requests the function's async backlog asks for (last poll; 0 when unknown). */
  demand(name: string): number;
  /** Re-reads the backlog of every function now (the timer does it each interval). */
  poll(): Promise<void>;
  stop(): void;
}

export function createQueueDemand(options: {
  invocations: Pick<AsyncInvocations, 'depth' | 'concurrencyLimit'>;
  /** Functions to watch (those with routed revisions). */
  functions: () => Iterable<string>;
  /** Default 1000 ms: the autoscaler's tick. */
  intervalMs?: number;
}): QueueDemand {
  const { invocations } = options;
  let latest = new Map<string, number>();
  let polling: Promise<void> | undefined;

  const pollOnce = async () => {
    const next = new Map<string, number>();
    for (const name of new Set(options.functions())) {
      const { ready, running } = await invocations.depth(name);
      const room = Math.max(0, invocations.concurrencyLimit(name) - running);
      const extra = Math.min(ready, room);
      if (extra > 0) next.set(name, extra);
    }
    latest = next;
  };
  const poll = () => {
    polling ??= pollOnce()
      .catch(() => {}) // a closed queue at shutdown: keep the last values
      .finally(() => {
        polling = undefined;
      });
    return polling;
  };
  const timer = setInterval(poll, options.intervalMs ?? 1000);
  timer.unref();

  return {
    demand: (name) => latest.get(name) ?? 0,
    poll,
    stop: () => clearInterval(timer),
  };
}
