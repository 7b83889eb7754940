/** Resource limits of one instance, derived from its manifest (`memory`, `cpu`). Pure arithmetic. */
import { availableParallelism } from 'node:os';

/** Knobs of the limits arithmetic. Defaults are in LIMIT_DEFAULTS. */
export interface LimitOptions {
  /** Memory that buys one full CPU core when `cpu` is not set (Lambda: 1769 MB per vCPU). */
  mbPerCpu?: number;
  /** Smallest CPU share given when `cpu` is not set, in cores. */
  minCpu?: number;
  /** Largest process + thread count (pids.max; idle Node alone uses ~7 threads). */
  pidsMax?: number;
  /** CFS period in microseconds. */
  cpuPeriodUs?: number;
  /** Cores an instance may use while it starts. Default: every core of the machine. */
  startCpu?: number;
}

export const LIMIT_DEFAULTS = {
  mbPerCpu: 1769,
  // Below ~0.5 core a Node cold start (~40 ms of CPU) is stretched over several 100 ms CFS periods.
  minCpu: 0.5,
  pidsMax: 256,
  cpuPeriodUs: 100_000,
  startCpu: availableParallelism(),
} as const satisfies Required<LimitOptions>;

export interface InstanceLimits {
  /** Hard memory limit (cgroup), bytes. */
  memoryBytes: number;
  /** CPU cores (fractional). */
  cpu: number;
  /** CFS quota per period, microseconds. */
  cpuQuotaUs: number;
  /**
   * Quota while the instance starts (startCpu cores): a cold start is mostly CPU (~40-300 ms of
   * it for Node, on several threads), which a small steady quota would stretch over several
   * periods. Lambda boosts init the same way. The provider lowers it to cpuQuotaUs once ready.
   */
  startCpuQuotaUs: number;
  cpuPeriodUs: number;
  pidsMax: number;
}

/** Smallest quota the kernel accepts (1 ms). */
const MIN_QUOTA_US = 1000;

/**
 * The limits of an instance of `memoryMb`: memory is a hard limit of exactly that size; CPU is
 * `cpu` cores when set, otherwise memory / mbPerCpu cores (as Lambda scales it), at least minCpu.
 */
export function limitsFor(memoryMb: number, cpu: number | undefined, options: LimitOptions = {}): InstanceLimits {
  const o = { ...LIMIT_DEFAULTS, ...options };
  const cores = cpu ?? Math.max(o.minCpu, memoryMb / o.mbPerCpu);
  const cpuQuotaUs = Math.max(MIN_QUOTA_US, Math.round(cores * o.cpuPeriodUs));
  return {
    memoryBytes: Math.round(memoryMb * 1024 * 1024),
    cpu: cores,
    cpuQuotaUs,
    startCpuQuotaUs: Math.max(cpuQuotaUs, Math.round(o.startCpu * o.cpuPeriodUs)),
    cpuPeriodUs: o.cpuPeriodUs,
    pidsMax: o.pidsMax,
  };
}

/**
 * V8's old-space limit for a Node instance of `memoryMb`: ~75% of the memory, so a heap hog gets a
 * clean "JavaScript heap out of memory" from V8 before the kernel's OOM killer strikes the process.
 */
export function heapLimitMb(memoryMb: number): number {
  return Math.max(16, Math.floor(memoryMb * 0.75));
}
