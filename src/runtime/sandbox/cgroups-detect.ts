/**
 * Where the cgroup controllers live on this machine, read from /proc/self/mountinfo and
 * /proc/self/cgroup. Pure parsing (tested with captured text); the filesystem work is in cgroups.ts.
 */
import { join } from 'node:path';

/** The controllers an instance needs: limits (memory, cpu, pids), accounting (cpuacct), freeze/thaw. */
export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];
/** cgroup v2 controllers that must be enabled (freeze, cpu.stat and cgroup.kill are built in). */
export const V2_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;

export interface CgroupMount {
  /** Mount point, e.g. /sys/fs/cgroup/memory. */
  dir: string;
  /** The cgroup path the mount exposes as its root (`/` unless in a container with cgroupns). */
  root: string;
  /** 1 for `cgroup`, 2 for `cgroup2`. */
  version: 1 | 2;
  /** v1: the controllers of this hierarchy (from the super options). */
  controllers: string[];
}

/** Cgroup mounts listed in /proc/self/mountinfo. */
export function parseMountinfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    // id parent major:minor root mountpoint options [optional fields] - fstype source superoptions
    const dash = line.indexOf(' - ');
    if (dash === -1) continue;
    const left = line.slice(0, dash).split(' ');
    const [fstype, , superOptions = ''] = line.slice(dash + 3).split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const decode = (s: string) => s.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8)));
    mounts.push({
      dir: decode(left[4] ?? ''),
      root: decode(left[3] ?? '/'),
      version: fstype === 'cgroup2' ? 2 : 1,
      controllers:
        fstype === 'cgroup' ? superOptions.split(',').filter((o) => V1_CONTROLLERS.includes(o as never)) : [],
    });
  }
  return mounts;
}

/** /proc/self/cgroup as controller → path (`''` is the v2 unified hierarchy; names without `name=`). */
export function parseProcCgroup(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const controller of m[1]!.split(',')) paths.set(controller, m[2]!);
  }
  return paths;
}

/** The directory of `path` (as /proc/self/cgroup names it) under a mount exposing `mount.root`. */
export function cgroupDir(mount: CgroupMount, path: string): string {
  const root = mount.root === '/' ? '' : mount.root;
  const rel = root && (path === root || path.startsWith(`${root}/`)) ? path.slice(root.length) : path;
  const dir = join(mount.dir, rel);
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

export type CgroupLayout =
  | { version: 1; dirs: Record<V1Controller, string> }
  | { version: 2; dir: string }
  | { version: 0; reason: string };

/**
 * Our own cgroup directory per controller, preferring v2 when its mount has the controllers we need
 * (`controllersOf` reads a v2 dir's cgroup.controllers), else v1 when memory, cpu, cpuacct, pids
 * and freezer are all mounted. Instances are nested below our own cgroup, so the limits of the
 * service that runs Nimbus still cover them.
 */
export function chooseLayout(
  mounts: CgroupMount[],
  own: Map<string, string>,
  controllersOf: (dir: string) => string[],
): CgroupLayout {
  const unified = mounts.find((m) => m.version === 2);
  if (unified && own.has('')) {
    const dir = cgroupDir(unified, own.get('')!);
    const available = controllersOf(dir);
    if (V2_CONTROLLERS.every((c) => available.includes(c))) return { version: 2, dir };
  }
  const dirs: Partial<Record<V1Controller, string>> = {};
  const missing: string[] = [];
  for (const controller of V1_CONTROLLERS) {
    const mount = mounts.find((m) => m.version === 1 && m.controllers.includes(controller));
    const path = own.get(controller);
    if (!mount || path === undefined) missing.push(controller);
    else dirs[controller] = cgroupDir(mount, path);
  }
  if (missing.length === 0) return { version: 1, dirs: dirs as Record<V1Controller, string> };
  return {
    version: 0,
    reason: unified
      ? `cgroup v2 has not all of ${V2_CONTROLLERS.join(', ')} enabled and cgroup v1 lacks ${missing.join(', ')}`
      : `no cgroup v2 mount and cgroup v1 lacks ${missing.join(', ')}`,
  };
}
