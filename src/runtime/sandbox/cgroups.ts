/**
 * One cgroup per instance, below a per-runtime parent `nimbus/rt-PID-N` nested in our own cgroup:
 * hard memory limit, CPU quota, pids.max, a freezer, and the counters an instance's stats and its
 * out-of-memory verdict are read from. cgroup v1 (one directory per controller) and v2 (one
 * directory) behind one interface; which one is chosen at run time (cgroups-detect.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CgroupLayout,
  chooseLayout,
  parseMountinfo,
  parseProcCgroup,
  V1_CONTROLLERS,
  V2_CONTROLLERS,
} from './cgroups-detect.js';
import type { InstanceLimits } from './limits.js';

/** Consumption of one instance, read from its cgroup (or /proc when unsandboxed). */
export interface InstanceStats {
  /** CPU time used by all its processes, milliseconds. */
  cpuMs: number;
  /** Memory charged now (cgroup) or resident (/proc), bytes. */
  memoryBytes: number;
  /** Highest memoryBytes seen. */
  memoryPeakBytes: number;
  /** Processes and threads. */
  pids: number;
}

/** The cgroup of one instance. */
export interface InstanceCgroup {
  /** Files a process writes its pid into to join (one per v1 hierarchy, one for v2). */
  readonly procsFiles: string[];
  /** Sets the CPU quota per period (microseconds), e.g. from the start boost to the steady limit. */
  setCpuQuota(quotaUs: number): void;
  /**
   * Applies another instance's limits (memory, pids, the start CPU quota): a pool cell takes its
   * function's. Throws when the kernel refuses (memory already above the new limit).
   */
  setLimits(limits: InstanceLimits): void;
  /** How many times the kernel's OOM killer struck inside this cgroup. */
  oomKills(): number;
  stats(): InstanceStats;
  /** Freezes every process (cgroup freezer); resolves once frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** SIGKILLs whatever is left in the cgroup, then removes it. Never throws. */
  remove(): Promise<void>;
}

/** The cgroups of one runtime. */
export interface CgroupHost {
  readonly version: 1 | 2;
  /** Makes the cgroup of an instance (`name`: letters, digits, `._-`) with its limits. */
  create(name: string, limits: InstanceLimits): InstanceCgroup;
  /** Removes the runtime's parent cgroup (instances removed first). Never throws. */
  close(): void;
}

let runtimes = 0;

/** Detects cgroups and makes this runtime's parent; `{ reason }` when cgroups cannot be used here. */
export function openCgroups(
  options: { procSelf?: string; layout?: CgroupLayout } = {},
): CgroupHost | { reason: string } {
  let layout = options.layout;
  try {
    if (!layout) {
      const proc = options.procSelf ?? '/proc/self';
      layout = chooseLayout(
        parseMountinfo(readFileSync(join(proc, 'mountinfo'), 'utf8')),
        parseProcCgroup(readFileSync(join(proc, 'cgroup'), 'utf8')),
        (dir) => readList(join(dir, 'cgroup.controllers')),
      );
    }
    if (layout.version === 0) return { reason: layout.reason };
    const name = `rt-${process.pid}-${++runtimes}`;
    return layout.version === 1 ? openV1(layout.dirs, name) : openV2(layout.dir, name);
  } catch (err) {
    return { reason: `cgroups are not writable: ${(err as Error).message}` };
  }
}

const readList = (file: string): string[] => {
  try {
    return readFileSync(file, 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
};
const readNumber = (file: string): number => {
  try {
    return Number.parseInt(readFileSync(file, 'utf8'), 10) || 0;
  } catch {
    return 0;
  }
};
/** `key value` lines (memory.events, cpu.stat, memory.oom_control) → the value of `key`. */
export function readKey(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}
const readKeyOf = (file: string, key: string): number => {
  try {
    return readKey(readFileSync(file, 'utf8'), key);
  } catch {
    return 0;
  }
};
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Removes a cgroup dir, SIGKILLing its remaining processes; retries while they die. */
async function removeDir(dir: string, procsFile = join(dir, 'cgroup.procs')): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (!existsSync(dir)) return;
    for (const pid of readList(procsFile)) {
      try {
        if (pid) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      await tick(attempt < 10 ? 5 : 20);
    }
  }
}

/** Removes leftovers of runtimes whose process is gone (a crash or kill -9 of an earlier Nimbus). */
function sweepStale(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^rt-(\d+)-\d+$/.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    const dir = join(parent, name);
    try {
      for (const child of readdirSync(dir, { withFileTypes: true })) {
        if (!child.isDirectory()) continue;
        // An instance left frozen by a killed Nimbus cannot die until thawed (freezer hierarchy only).
        for (const [file, value] of [
          ['freezer.state', 'THAWED'],
          ['cgroup.freeze', '0'],
        ]) {
          try {
            writeFileSync(join(dir, child.name, file!), value!);
          } catch {}
        }
        void removeDir(join(dir, child.name));
      }
      rmdirSync(dir);
    } catch {
      // still busy: the next start tries again
    }
  }
}
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

function openV1(own: Record<(typeof V1_CONTROLLERS)[number], string>, name: string): CgroupHost {
  // cpu and cpuacct may share one hierarchy (`cpu,cpuacct`): join each directory once.
  const bases = new Map<string, string>();
  for (const c of V1_CONTROLLERS) {
    sweepStale(join(own[c], 'nimbus'));
    bases.set(c, join(own[c], 'nimbus', name));
  }
  for (const dir of new Set(bases.values())) mkdirSync(dir, { recursive: true });
  const base = (c: (typeof V1_CONTROLLERS)[number]) => bases.get(c)!;
  return {
    version: 1,
    create(id, limits) {
      const dirs = new Map<string, string>();
      for (const c of V1_CONTROLLERS) dirs.set(c, join(base(c), id));
      const unique = [...new Set(dirs.values())];
      // The parent may have been swept by a runtime that just closed: recreate it.
      for (const dir of unique) mkdirSync(dir, { recursive: true });
      const d = (c: (typeof V1_CONTROLLERS)[number]) => dirs.get(c)!;
      const setLimits = (l: InstanceLimits) => {
        // memory+swap must stay ≥ memory: raising, memsw goes first; lowering, it goes last (the
        // first write then fails and is retried). No swapping around the limit (memsw is absent
        // when the kernel has no swap accounting).
        const memsw = () => {
          try {
            writeFileSync(join(d('memory'), 'memory.memsw.limit_in_bytes'), String(l.memoryBytes));
          } catch {}
        };
        memsw();
        writeFileSync(join(d('memory'), 'memory.limit_in_bytes'), String(l.memoryBytes));
        memsw();
        writeFileSync(join(d('cpu'), 'cpu.cfs_period_us'), String(l.cpuPeriodUs));
        writeFileSync(join(d('cpu'), 'cpu.cfs_quota_us'), String(l.startCpuQuotaUs));
        writeFileSync(join(d('pids'), 'pids.max'), String(l.pidsMax));
      };
      setLimits(limits);
      let peak = 0;
      const freezer = join(d('freezer'), 'freezer.state');
      const cgroup: InstanceCgroup = {
        procsFiles: unique.map((dir) => join(dir, 'cgroup.procs')),
        setCpuQuota: (us) => writeFileSync(join(d('cpu'), 'cpu.cfs_quota_us'), String(us)),
        setLimits,
        oomKills: () => readKeyOf(join(d('memory'), 'memory.oom_control'), 'oom_kill'),
        stats() {
          const memoryBytes = readNumber(join(d('memory'), 'memory.usage_in_bytes'));
          peak = Math.max(peak, memoryBytes, readNumber(join(d('memory'), 'memory.max_usage_in_bytes')));
          return {
            cpuMs: readNumber(join(d('cpuacct'), 'cpuacct.usage')) / 1e6,
            memoryBytes,
            memoryPeakBytes: peak,
            pids: readNumber(join(d('pids'), 'pids.current')),
          };
        },
        async freeze() {
          writeFileSync(freezer, 'FROZEN');
          while (readFileSync(freezer, 'utf8').trim() !== 'FROZEN') await tick(1);
        },
        async thaw() {
          writeFileSync(freezer, 'THAWED');
        },
        async remove() {
          try {
            // A frozen process cannot die: thaw first so SIGKILL takes.
            writeFileSync(freezer, 'THAWED');
          } catch {}
          await Promise.all(unique.map((dir) => removeDir(dir)));
        },
      };
      return cgroup;
    },
    close() {
      for (const dir of new Set(bases.values())) {
        try {
          rmdirSync(dir);
        } catch {}
        try {
          rmdirSync(join(dir, '..')); // `nimbus`, when no other runtime uses it
        } catch {}
      }
    },
  };
}

function openV2(own: string, name: string): CgroupHost {
  const parent = join(own, 'nimbus');
  const base = join(parent, name);
  // chooseLayout picks v2 only with all three; a layout given explicitly (the integration test on a
  // v2 mount without controllers) gets what is there, and the limits of the others are skipped.
  const available = readList(join(own, 'cgroup.controllers'));
  const has = new Set<string>(V2_CONTROLLERS.filter((c) => available.includes(c)));
  const enable = [...has].map((c) => `+${c}`).join(' ');
  sweepStale(parent);
  mkdirSync(base, { recursive: true });
  // Fails with EBUSY when `own` holds processes (v2's no-internal-process rule): then the service
  // manager must delegate a subtree to Nimbus (systemd: Delegate=yes) — reported as the reason.
  if (enable) for (const dir of [own, parent, base]) writeFileSync(join(dir, 'cgroup.subtree_control'), enable);
  return {
    version: 2,
    create(id, limits) {
      const dir = join(base, id);
      mkdirSync(dir);
      const setLimits = (l: InstanceLimits) => {
        if (has.has('memory')) {
          writeFileSync(join(dir, 'memory.max'), String(l.memoryBytes));
          try {
            writeFileSync(join(dir, 'memory.swap.max'), '0');
          } catch {}
        }
        if (has.has('cpu')) writeFileSync(join(dir, 'cpu.max'), `${l.startCpuQuotaUs} ${l.cpuPeriodUs}`);
        if (has.has('pids')) writeFileSync(join(dir, 'pids.max'), String(l.pidsMax));
      };
      setLimits(limits);
      let peak = 0;
      return {
        procsFiles: [join(dir, 'cgroup.procs')],
        setCpuQuota: (us) => {
          if (has.has('cpu')) writeFileSync(join(dir, 'cpu.max'), `${us} ${limits.cpuPeriodUs}`);
        },
        setLimits,
        oomKills: () => readKeyOf(join(dir, 'memory.events'), 'oom_kill'),
        stats() {
          const memoryBytes = readNumber(join(dir, 'memory.current'));
          peak = Math.max(peak, memoryBytes, readNumber(join(dir, 'memory.peak')));
          return {
            cpuMs: readKeyOf(join(dir, 'cpu.stat'), 'usage_usec') / 1000,
            memoryBytes,
            memoryPeakBytes: peak,
            pids: readNumber(join(dir, 'pids.current')),
          };
        },
        async freeze() {
          writeFileSync(join(dir, 'cgroup.freeze'), '1');
          while (readKeyOf(join(dir, 'cgroup.events'), 'frozen') !== 1) await tick(1);
        },
        async thaw() {
          writeFileSync(join(dir, 'cgroup.freeze'), '0');
        },
        async remove() {
          try {
            writeFileSync(join(dir, 'cgroup.kill'), '1');
          } catch {}
          await removeDir(dir);
        },
      };
    },
    close() {
      for (const dir of [base, parent]) {
        try {
          rmdirSync(dir);
        } catch {}
      }
    },
  };
}
