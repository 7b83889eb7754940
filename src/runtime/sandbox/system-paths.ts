/**
 * What of the host an instance sees: the system directories an interpreter needs (read-only), an
 * allow-list of /etc, and interpreters that live outside them (pyenv, nvm) resolved to their real
 * binary so only that interpreter's prefix is bound, never the home directory around it.
 */
import { execFileSync } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  lstatSync,
  openSync,
  readlinkSync,
  readSync,
  realpathSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

/**
 * One read-only piece of the host system, at `path` inside: bound from the same host path, or from
 * `source` (an /etc file reached through a symlink whose target the sandbox does not show).
 */
export type SystemMount =
  | { kind: 'ro-bind'; path: string; source?: string }
  | { kind: 'symlink'; path: string; target: string };

/** Directories bound whole (read-only) when present. */
export const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * Files and folders of /etc an interpreter may read: the dynamic linker's cache, name resolution,
 * TLS roots, time zone, Debian's alternatives (/usr/bin/x → /etc/alternatives/x → …) and
 * interpreter config. Never passwd/shadow: a two-line passwd is generated instead.
 */
export const ETC_ALLOW = [
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'alternatives',
  'resolv.conf',
  'hosts',
  'host.conf',
  'nsswitch.conf',
  'gai.conf',
  'services',
  'protocols',
  'ssl',
  'ca-certificates',
  'localtime',
  'timezone',
  'mime.types',
  'os-release',
  'debian_version',
];

/**
 * The system view: SYSTEM_DIRS (a symlink such as /lib → usr/lib stays a symlink) and ETC_ALLOW.
 * `sources` takes an /etc entry from another host path (`{ '/etc/resolv.conf': FILE }`): the CRIU
 * dump copy's generated resolv.conf, and tests, which cannot change the host's own.
 */
export function systemMounts(root = '/', sources: Record<string, string> = {}): SystemMount[] {
  const mounts: SystemMount[] = [];
  for (const dir of SYSTEM_DIRS) {
    const host = join(root, dir);
    const stat = lstatQuiet(host);
    if (stat?.isSymbolicLink()) mounts.push({ kind: 'symlink', path: dir, target: readlinkSync(host) });
    else if (stat) mounts.push({ kind: 'ro-bind', path: dir });
  }
  const dirs = [...mounts];
  const etc = ETC_ALLOW.map((name) => `/etc/${name}`);
  // Python's per-version config (/etc/python3.11/sitecustomize.py on Debian).
  for (const version of ['python3']) if (existsSync(join(root, 'etc', version))) etc.push(`/etc/${version}`);
  for (const path of etc) {
    const m = etcMount(path, sources[path] ?? join(root, path), dirs);
    if (m) mounts.push(m);
  }
  return mounts;
}

function lstatQuiet(path: string): import('node:fs').Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * How the /etc entry at `path` inside comes from `host`. A symlink stays one only when every hop
 * of its chain lies in the bound system dirs (/etc/localtime → /usr/share/zoneinfo/…, which
 * programs read the zone name from); otherwise its resolved target is bound in its place, since
 * the target is not mounted (systemd-resolved's /etc/resolv.conf → ../run/systemd/resolve/…,
 * NixOS's /etc/hosts → /etc/static/… → /nix/store/…). A dangling one stays as dangling as on the host.
 */
export function etcMount(path: string, host: string, dirs: SystemMount[]): SystemMount | undefined {
  const stat = lstatQuiet(host);
  if (!stat) return undefined;
  if (!stat.isSymbolicLink())
    return host === path ? { kind: 'ro-bind', path } : { kind: 'ro-bind', path, source: host };
  if (host === path && chainInside(host, dirs)) return { kind: 'symlink', path, target: readlinkSync(host) };
  try {
    return { kind: 'ro-bind', path, source: realpathSync(host) };
  } catch {
    return host === path ? { kind: 'symlink', path, target: readlinkSync(host) } : undefined;
  }
}

/** True when each hop of the symlink `link` and its final target lie in the bound system dirs. */
function chainInside(link: string, dirs: SystemMount[]): boolean {
  const under = (p: string) => dirs.some((m) => p === m.path || p.startsWith(`${m.path}/`));
  let p = link;
  for (let hop = 0; hop < 40 && lstatQuiet(p)?.isSymbolicLink(); hop++) {
    p = resolve(dirname(p), readlinkSync(p));
    if (!under(p)) return false;
  }
  try {
    return isSystemPath(realpathSync(link), dirs);
  } catch {
    return false;
  }
}

/** True when `path` is inside one of the bound system directories. */
export function isSystemPath(path: string, mounts: SystemMount[]): boolean {
  return mounts.some((m) => m.kind === 'ro-bind' && (path === m.path || path.startsWith(`${m.path}/`)));
}

/** The PATH instances get when sandboxed: only directories they can see. */
export const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin';

/** A program as the sandbox runs it: its real path, and a host directory to bind read-only for it. */
export interface ResolvedProgram {
  path: string;
  /** The interpreter's prefix (`…/versions/3.11.7` for `…/versions/3.11.7/bin/python3.11`). */
  bind?: string;
}

function isElf(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    return head.toString('latin1') === '\x7fELF';
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** pyenv's `shims/NAME` scripts: ask pyenv which real binary the shim would run. */
function throughPyenv(shim: string, name: string): string | undefined {
  const root = dirname(dirname(shim));
  const pyenv = join(root, 'libexec', 'pyenv');
  if (basename(dirname(shim)) !== 'shims' || !existsSync(pyenv)) return undefined;
  try {
    const out = execFileSync(pyenv, ['which', name], {
      env: { PYENV_ROOT: root, PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves `program` the way the unsandboxed instance would (the first hit on `searchPath`), then
 * makes it runnable inside: a hit in a system dir runs as is; an ELF binary elsewhere runs by its
 * real path with its prefix bound; a pyenv shim is resolved to the real interpreter first. A script
 * outside the system dirs is skipped (its interpreter and imports are unknown), so the next hit
 * wins. Undefined when nothing fits: the instance then reports "not found" itself.
 */
export function resolveProgram(
  program: string,
  searchPath: string,
  mounts: SystemMount[],
): ResolvedProgram | undefined {
  // Relative to the instance's working directory (its code): nothing to resolve on the host.
  if (program.includes('/') && !isAbsolute(program)) return { path: program };
  const candidates = program.includes('/')
    ? [program]
    : searchPath
        .split(':')
        .filter((d) => isAbsolute(d))
        .map((d) => join(d, program));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    const real = realpathSync(candidate);
    if (isSystemPath(candidate, mounts) && isSystemPath(real, mounts)) return { path: candidate };
    const binary = isElf(real) ? real : throughPyenv(candidate, basename(program));
    if (binary && isElf(realpathSync(binary))) {
      const path = realpathSync(binary);
      return isSystemPath(path, mounts) ? { path } : { path, bind: dirname(dirname(path)) };
    }
  }
  return undefined;
}

/** The host directory to bind so `binary` runs inside (its prefix), or undefined when it is a system one. */
export function prefixToBind(binary: string, mounts: SystemMount[]): { path: string; bind?: string } {
  const path = realpathSync(binary);
  return isSystemPath(path, mounts) ? { path } : { path, bind: dirname(dirname(path)) };
}
