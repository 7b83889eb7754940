import type { Clock } from '../core/clock.js';
import type { LeasedJob, Queue } from '../queue/types.js';

export interface DispatcherOptions {
  queue: Queue;
  clock: Clock;
  /** Handles one leased job and settles it (complete / retry / deadLetter). Must not throw. */
  run(job: LeasedJob): Promise<void>;
  /** Jobs of `queue` that may run at once. */
  limit(queue: string): number;
  /** Lease length for a job of `queue`: longer than the longest an attempt can take. */
  visibilityMs(queue: string): number;
  /** Longest sleep between looks at the queue when nothing wakes the dispatcher. Default 30 s. */
  pollMs?: number;
}

export interface Dispatcher {
  /** Looks at the queue from now on (all queues with due work, then as work arrives). */
  start(): void;
  /** New work in `queue`: look at once. */
  notify(queue: string): void;
  readonly running: number;
  /** Stops leasing; resolves when the running jobs have finished or `timeoutMs` passed. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Leases due work per queue up to each queue's concurrency limit and hands each job to `run`.
 * It wakes on `notify` (an enqueue on this node), when a job finishes (its queue may have more),
 * and on a timer set to the queue's next due time (retries, expired leases) — never by polling
 * in a tight loop.
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { queue, clock } = options;
  const pollMs = options.pollMs ?? 30_000;
  const running = new Map<string, number>();
  // Queues that may have due work; a queue leaves the set when a lease comes back short.
  const pending = new Set<string>();
  // Those that left it: where a job that comes due later is, until the timer or a notify.
  const drained = new Set<string>();
  // Bumped on every notify, so a lease that came back short only clears a queue nobody touched meanwhile.
  const touched = new Map<string, number>();
  const active = new Set<Promise<void>>();
  let total = 0;
  let pumping = false;
  let again = false;
  let started = false;
  let closed = false;
  let cancelWake = () => {};

  async function pump(): Promise<void> {
    if (!started || closed) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      // A notify() while we await is recorded in `again`, including one during scheduleWake.
      for (;;) {
        again = false;
        // No lease of this pass looks at the queue before this time (each takes its own "now" later).
        const passStart = clock.now();
        for (const name of [...pending]) {
          if (closed) return;
          const free = options.limit(name) - (running.get(name) ?? 0);
          if (free <= 0) continue; // a finishing job pumps again
          const mark = touched.get(name);
          const jobs = await queue.lease(name, free, options.visibilityMs(name));
          if (jobs.length < free && touched.get(name) === mark) {
            pending.delete(name);
            drained.add(name);
          }
          for (const job of jobs) launch(job);
        }
        if (closed) return;
        if (again) continue;
        await scheduleWake(passStart);
        if (!again || closed) break;
      }
    } catch (err) {
      // The store failing (disk full, closed under us) must not kill the node: look again later.
      if (!closed) {
        console.error('nimbus: async dispatcher:', err);
        cancelWake();
        cancelWake = clock.setTimer(() => void wake(), 1000);
      }
    } finally {
      pumping = false;
    }
  }

  function launch(job: LeasedJob): void {
    running.set(job.queue, (running.get(job.queue) ?? 0) + 1);
    total++;
    const p = options
      .run(job)
      .catch((err) => console.error(`nimbus: async job ${job.id}:`, err))
      .finally(() => {
        active.delete(p);
        total--;
        const left = (running.get(job.queue) ?? 1) - 1;
        if (left === 0) running.delete(job.queue);
        else running.set(job.queue, left);
        pending.add(job.queue);
        void pump();
      });
    active.add(p);
  }

  async function scheduleWake(passStart: number): Promise<void> {
    // Only what comes due after the pass began: work due before it that no lease took is a queue
    // at its limit, pumped by its finishing jobs, and must not hide another queue's later time.
    let at = await queue.nextWakeAt(passStart);
    if (at !== undefined && at <= clock.now()) {
      // A job came due during this pass, after the leases may have looked (a retry 50 ms out and
      // a lease commit slower than that): the drained queues with free slots look again now. One
      // more pass at most: its own start is after `at`.
      for (const name of drained) {
        if (options.limit(name) - (running.get(name) ?? 0) <= 0) continue;
        drained.delete(name);
        pending.add(name);
        again = true;
      }
      if (again) return; // the next pass sets the timer
      at = await queue.nextWakeAt(clock.now());
    }
    const delay = at === undefined ? pollMs : Math.max(0, Math.min(at - clock.now(), pollMs));
    cancelWake();
    cancelWake = clock.setTimer(() => void wake(), delay);
  }

  async function wake(): Promise<void> {
    if (closed) return;
    try {
      for (const name of await queue.readyQueues()) pending.add(name);
    } catch (err) {
      console.error('nimbus: async dispatcher:', err);
    }
    await pump();
  }

  return {
    start() {
      if (started) return;
      started = true;
      void wake();
    },
    notify(name) {
      pending.add(name);
      touched.set(name, (touched.get(name) ?? 0) + 1);
      void pump();
    },
    get running() {
      return total;
    },
    async close(timeoutMs = 30_000) {
      closed = true;
      cancelWake();
      if (active.size === 0) return;
      let cancel = () => {};
      await Promise.race([
        Promise.allSettled([...active]),
        new Promise<void>((resolve) => {
          cancel = clock.setTimer(resolve, timeoutMs);
        }),
      ]);
      cancel();
    },
  };
}
