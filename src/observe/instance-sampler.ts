import type { Clock } from '../core/clock.js';
import type { InstanceStats as RawStats } from '../runtime/index.js';

/** One reading of an instance's resource use. */
export interface ResourceSample {
  /** Epoch ms. */
  time: number;
  cpuMs: number;
  /** CPU use since the previous sample, in percent of one core. */
  cpuPercent: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  pids: number;
}

export interface SampleTarget {
  id: string;
  pid?: number;
}

export interface InstanceSampler {
  /** The newest sample of an instance, if any. */
  latest(id: string): ResourceSample | undefined;
  /** Recent samples, oldest first. */
  history(id: string): ResourceSample[];
  /** Takes one round of samples now (the timer calls this every interval). */
  sample(): void;
  stop(): void;
}

export interface InstanceSamplerOptions {
  clock: Clock;
  /** Live instances to sample. */
  list(): SampleTarget[];
  /** Reads cumulative stats of one instance; undefined when it is gone. */
  read(target: SampleTarget): RawStats | undefined;
  /** Default 1000 ms. */
  intervalMs?: number;
  /** Samples kept per instance. Default 300 (five minutes at one a second). */
  keep?: number;
}

/**
 * Samples every live instance's CPU and memory once a second and keeps a short history, so the
 * API can show what each instance really consumes (the "black box" hosted platforms keep shut).
 */
export function createInstanceSampler(options: InstanceSamplerOptions): InstanceSampler {
  const { clock } = options;
  const keep = options.keep ?? 300;
  const series = new Map<string, ResourceSample[]>();
  let cancel = () => {};
  let stopped = false;

  const sample = () => {
    const now = clock.now();
    const targets = options.list();
    const live = new Set(targets.map((t) => t.id));
    for (const id of series.keys()) if (!live.has(id)) series.delete(id);
    for (const target of targets) {
      const id = target.id;
      const raw = options.read(target);
      if (!raw) continue;
      let list = series.get(id);
      if (!list) {
        list = [];
        series.set(id, list);
      }
      const prev = list.at(-1);
      const cpuPercent = prev && now > prev.time ? (100 * Math.max(0, raw.cpuMs - prev.cpuMs)) / (now - prev.time) : 0;
      list.push({ time: now, ...raw, cpuPercent: Math.round(cpuPercent * 10) / 10 });
      if (list.length > keep) list.shift();
    }
  };
  const schedule = () => {
    cancel = clock.setTimer(() => {
      sample();
      if (!stopped) schedule();
    }, options.intervalMs ?? 1000);
  };
  schedule();

  return {
    latest: (id) => series.get(id)?.at(-1),
    history: (id) => [...(series.get(id) ?? [])],
    sample,
    stop() {
      stopped = true;
      cancel();
    },
  };
}
