import type { Clock } from '../core/clock.js';

/** Resolves after `ms` on the injected clock, or at once when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const cancel = clock.setTimer(done, ms);
    function done() {
      cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Reconnect delays for a broker that is down: 500 ms doubling to 30 s. */
export function reconnectDelayMs(failures: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, failures - 1));
}

/**
 * Runs `session` (connect, consume until the connection ends) again and again until `signal`
 * aborts, waiting with backoff after each failure; `onError` reports it (the trigger turns
 * unhealthy). A session that ran normally resets the backoff.
 */
export async function superviseConnection(
  clock: Clock,
  signal: AbortSignal,
  session: () => Promise<void>,
  onError: (err: unknown) => void,
): Promise<void> {
  let failures = 0;
  while (!signal.aborted) {
    try {
      await session();
      failures = 0;
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      onError(err);
    }
    if (!signal.aborted) await sleep(clock, reconnectDelayMs(Math.max(1, failures)), signal);
  }
}
