import { readFileSync } from 'node:fs';
import type { InstanceStats } from '../sandbox/cgroups.js';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ: 100 on every Linux build we target). */
const USER_HZ = 100;

/**
 * An unsandboxed instance's consumption from /proc: its leader process only (an app's children
 * are not counted — cgroups count them). Undefined when the process is gone.
 */
export function procStats(pid: number | undefined): InstanceStats | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state (field 3).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime (14), stime (15)
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return {
      cpuMs: (ticks * 1000) / USER_HZ,
      memoryBytes: kb('VmRSS'),
      memoryPeakBytes: kb('VmHWM'),
      pids: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0),
    };
  } catch {
    return undefined;
  }
}
