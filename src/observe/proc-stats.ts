import { readFileSync } from 'node:fs';

/** Cumulative resource use of a process tree, as read from the kernel. */
export interface RawStats {
  /** CPU time (user + system) consumed so far, milliseconds. */
  cpuMs: number;
  memoryBytes: number;
  memoryPeakBytes: number;
  /** Processes and threads. */
  pids: number;
}

// USER_HZ is 100 on every Linux architecture Node supports (the ABI fixes it, whatever CONFIG_HZ is).
const TICK_MS = 10;

/**
 * Stats of `pid` and its descendants from /proc: the fallback when an instance has no cgroup of
 * its own (unsandboxed). Undefined when the process is gone.
 */
export function procStats(pid: number): RawStats | undefined {
  const total: RawStats = { cpuMs: 0, memoryBytes: 0, memoryPeakBytes: 0, pids: 0 };
  const seen = new Set<number>();
  const visit = (p: number): boolean => {
    if (seen.has(p)) return true;
    seen.add(p);
    const stat = read(`/proc/${p}/stat`);
    const status = read(`/proc/${p}/status`);
    if (!stat || !status) return false;
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total.cpuMs += (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    total.memoryBytes += kb(status, 'VmRSS');
    total.memoryPeakBytes += kb(status, 'VmHWM');
    total.pids += Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1);
    for (const child of (read(`/proc/${p}/task/${p}/children`) ?? '').split(' '))
      if (child.trim()) visit(Number(child));
    return true;
  };
  return visit(pid) ? total : undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function kb(status: string, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
}
