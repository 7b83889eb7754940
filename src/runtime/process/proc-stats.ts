import { readFileSync } from 'node:fs';
import type { InstanceStats } from '../sandbox/cgroups.js';

// USER_HZ is 100 on every Linux architecture Node supports (the ABI fixes it, whatever CONFIG_HZ is).
const TICK_MS = 10;

/**
 * An unsandboxed instance's consumption from /proc: the process and all its descendants (an app
 * behind the watchdog is a child). Undefined when the process is gone.
 */
export function procStats(pid: number | undefined): InstanceStats | undefined {
  if (pid === undefined) return undefined;
  const total: InstanceStats = { cpuMs: 0, memoryBytes: 0, memoryPeakBytes: 0, pids: 0 };
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
