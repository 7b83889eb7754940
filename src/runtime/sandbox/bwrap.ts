/**
 * The command line that runs one instance in bubblewrap. Pure: every path and file descriptor is
 * given, so the arguments are tested as data (bwrap.test.ts) and the real run in the e2e suite.
 */
import { dirname } from 'node:path';
import type { SystemMount } from './system-paths.js';

/** Where things are inside every sandbox. The host layout (data dir, other functions) stays unseen. */
export const INSIDE = {
  code: '/nimbus/code',
  guest: '/nimbus/guest',
  run: '/nimbus/run',
} as const;

/** A host directory, opened by the provider and passed as `fd`, bound at `dest`. */
export interface FdBind {
  fd: number;
  dest: string;
  writable?: boolean;
}

export interface BwrapSpec {
  /** What runs inside, argv[0] an absolute path or one found on the instance's PATH. */
  argv: string[];
  cwd: string;
  /** `none`: a network namespace of its own (only `lo`); `egress`: the host's network. */
  network: 'none' | 'egress';
  /** Size of the private /tmp, bytes. */
  tmpSizeBytes: number;
  system: SystemMount[];
  /** Host files bound read-only by path (the generated /etc/passwd and /etc/group). */
  files: { source: string; dest: string }[];
  /** Directories bound by descriptor: the code, the guest, the socket dir, interpreter prefixes. */
  binds: FdBind[];
  /**
   * Nimbus runs as root: bwrap runs privileged (no user namespace) and the command drops to this
   * uid/gid inside, after every mount, with no capabilities and no_new_privs. Unset: bwrap runs
   * as the calling (unprivileged) user in a user namespace of its own.
   */
  dropTo?: { uid: number; gid: number; setprivPath: string };
  /**
   * Descriptor of the compiled seccomp filter (seccomp.ts). bwrap loads it last, after its own
   * namespace and mount setup, just before it execs the command (setpriv, then the guest).
   */
  seccompFd?: number;
}

/**
 * bwrap arguments: new mount, pid, ipc, uts and cgroup namespaces (and net for `none`); killed
 * with its parent; the system read-only; /proc of its own pid namespace; a minimal /dev; a
 * size-limited tmpfs /tmp; the root itself remounted read-only last, so nothing outside /tmp (and
 * the socket dir) is writable.
 *
 * Two ways to be unprivileged, measured: bwrap started as nobody (`setpriv … bwrap
 * --unshare-user`) resolves every bind source as nobody, even one passed as a descriptor, so code
 * under a 0700 folder (a mkdtemp data dir, /root/.pyenv) cannot be bound. So when Nimbus is root,
 * bwrap sets the sandbox up as root and the command itself drops to nobody (`dropTo`), with every
 * capability and the bounding set cleared and no_new_privs. When Nimbus is not root, bwrap makes a
 * user namespace, and nested ones are disabled.
 */
export function bwrapArgs(spec: BwrapSpec): string[] {
  const drop = spec.dropTo;
  const args = [
    ...(drop ? [] : ['--unshare-user', '--disable-userns']),
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(spec.network === 'none' ? ['--unshare-net'] : []),
    '--die-with-parent',
    '--hostname',
    'nimbus',
    // setpriv needs these two to change user; it drops them (and all others) before the exec.
    ...(drop ? ['--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID'] : []),
    ...(spec.seccompFd !== undefined ? ['--seccomp', String(spec.seccompFd)] : []),
  ];
  // The private /tmp first: a host path under /tmp that must be visible (a runtime installed in a
  // checkout under /tmp, say) is then bound on top of it instead of being hidden by it.
  args.push(
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--perms',
    '1777',
    '--size',
    String(spec.tmpSizeBytes),
    '--tmpfs',
    '/tmp',
  );
  // Folders above each mount point, searchable by all: a privileged bwrap would make them 0700.
  const dests = [...spec.system.map((m) => m.path), ...spec.files.map((f) => f.dest), ...spec.binds.map((b) => b.dest)];
  const parents = [...new Set(dests.map((d) => dirname(d)).filter((d) => d !== '/' && d !== '/tmp'))].sort();
  for (const dir of parents) args.push('--perms', '0755', '--dir', dir);
  for (const m of spec.system) {
    if (m.kind === 'symlink') args.push('--symlink', m.target, m.path);
    else args.push('--ro-bind', m.source ?? m.path, m.path);
  }
  for (const f of spec.files) args.push('--ro-bind', f.source, f.dest);
  for (const b of spec.binds) args.push(b.writable ? '--bind-fd' : '--ro-bind-fd', String(b.fd), b.dest);
  const argv = drop
    ? [
        drop.setprivPath,
        `--reuid=${drop.uid}`,
        `--regid=${drop.gid}`,
        '--clear-groups',
        '--no-new-privs',
        '--inh-caps=-all',
        '--bounding-set=-all',
        ...spec.argv,
      ]
    : spec.argv;
  args.push('--remount-ro', '/', '--chdir', spec.cwd, '--', ...argv);
  return args;
}

/**
 * Joins the instance's cgroups, ignores SIGTERM, then execs the rest. Ignoring SIGTERM keeps the
 * outer bwrap alive on a graceful stop (it does not forward signals, and its death would SIGKILL the
 * sandbox through --die-with-parent); the guest installs its own handler and drains. libuv resets
 * signal dispositions in the children it spawns, so an app's program gets SIGTERM as usual.
 */
export const JOIN_SCRIPT =
  'trap "" TERM; while [ "$#" -gt 0 ] && [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

/** Exit code of the join script when it cannot enter a cgroup. */
export const JOIN_FAILED_CODE = 125;

/** The full host command: `sh -c JOIN_SCRIPT cgroup.procs… -- [setpriv …] bwrap ARGS`. */
export function launchCommand(options: {
  bwrapPath: string;
  bwrapArgs: string[];
  procsFiles: string[];
  /** Drop to this uid/gid before bwrap (when Nimbus runs as root): bwrap then runs unprivileged. */
  user?: { uid: number; gid: number; setprivPath: string };
}): { command: string; args: string[] } {
  const { user } = options;
  const drop = user ? [user.setprivPath, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'] : [];
  return {
    command: '/bin/sh',
    args: [
      '-c',
      JOIN_SCRIPT,
      'nimbus-instance',
      ...options.procsFiles,
      '--',
      ...drop,
      options.bwrapPath,
      ...options.bwrapArgs,
    ],
  };
}
