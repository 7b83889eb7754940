/**
 * Making the CRIU image of an app-mode revision: a copy of the instance started specially for the
 * dump (same sandbox, never given traffic), checkpointed once it reports ready. What had to change
 * against a normal instance, each measured (docs/criu.md):
 * - bubblewrap runs `--as-pid-1 --new-session`: CRIU dumps a pid namespace from its init, and
 *   bwrap's own init maps /usr/bin/bwrap from outside the sandbox; the session leader must be inside.
 * - stdout/stderr are pipes (a shell pipeline), not Node's socketpairs, and stdin is closed: CRIU
 *   cannot dump the far half of a stream socket in another network namespace, nor the host's
 *   /dev/null. The pipes are external; a restore plugs the new instance's output in their place.
 * - criu dump runs as the instance's user (nobody) with the capabilities it needs: this machine
 *   denies CAP_SYS_RESOURCE, without which root cannot read a nobody process's rlimits.
 * - the copy always runs in a network namespace of its own with only loopback, also for
 *   `network: egress`: in the host's network every restore would re-bind the app's port and two
 *   restores' watchdogs would reach each other's app. A restored egress instance gets its outbound
 *   network attached afterwards (network.ts); init itself runs without one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NimbusError } from '../../core/errors.js';
import { readLines } from '../process/lines.js';
import { planSpawn, type SpawnContext, waitReady } from '../process/spawn.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { InstanceSpec } from '../types.js';

/** What a restore needs besides the images, kept as meta.json next to them. */
export interface CheckpointMeta {
  /** `pipe:[inode]` of the dumped stdout and stderr, replaced on restore (--inherit-fd). */
  pipes: [string, string];
  createdAt: string;
  dumpMs: number;
  /** Size of the images, bytes. */
  bytes: number;
  criuVersion?: string;
  /**
   * Node version, criu version and watchdog build the image holds: an image made by another
   * platform build is ignored (and made again), since the watchdog in it is restored as it was.
   */
  platform: string;
}

/** Where the pieces of one checkpoint live: `img/` (CRIU's images), `root/`, `meta.json`. */
export const IMAGE_DIR = 'img';
export const ROOT_DIR = 'root';
export const META_FILE = 'meta.json';
/**
 * What the image expects on restore beyond the platform: layout 2 names /etc/resolv.conf (a file
 * generated per restore, resolv.ts). Part of CheckpointMeta.platform, so older images are made again.
 */
export const IMAGE_LAYOUT = 'layout-2';

/** What checkpointing needs from its runtime. */
export interface CheckpointContext {
  criuPath: string;
  criuVersion?: string;
  /** See CheckpointMeta.platform. */
  platform: string;
  setprivPath: string;
  sandbox: Sandbox;
  spawn: SpawnContext;
}

/** The user instances run as (sandbox.ts drops to it when Nimbus is root). */
const NOBODY = 65534;
/**
 * Capabilities `criu dump` keeps once it runs as nobody: enough to ptrace, read and freeze the
 * tree and its namespaces. Never CAP_SYS_RESOURCE, which this machine's bounding set lacks.
 */
const DUMP_CAPS =
  '+checkpoint_restore,+sys_ptrace,+sys_admin,+net_admin,+dac_override,+dac_read_search,+chown,+fowner,+setuid,+setgid,+kill,+sys_chroot,+net_raw,+ipc_owner,+fsetid,+setpcap';
/** stdout/stderr of the command as two pipes (copied on by `cat`), stdin closed. */
const PIPES_SCRIPT = '{ "$@" 0<&- 2>&1 1>&9 9>&- | cat 1>&2; } 9>&1 | cat';

/** The options that make the sandbox dumpable, inserted right after the bwrap binary. */
export function dumpableLaunch(wrapped: { command: string; args: string[] }): { command: string; args: string[] } {
  const sep = wrapped.args.indexOf('--');
  if (sep === -1 || !wrapped.args[sep + 1]?.endsWith('bwrap'))
    throw new Error('the sandbox command is not the expected join script + bubblewrap');
  const args = [...wrapped.args];
  args.splice(sep + 2, 0, '--as-pid-1', '--new-session');
  return { command: '/bin/sh', args: ['-c', PIPES_SCRIPT, 'nimbus-checkpoint', wrapped.command, ...args] };
}

/** The criu dump arguments (pure, tested as data). */
export function dumpArgs(pid: number, imageDir: string): string[] {
  return [
    'dump',
    '-t',
    String(pid),
    '-D',
    imageDir,
    '-o',
    'dump.log',
    '-v2',
    '--unprivileged',
    '--network-lock',
    'skip',
    '--tcp-established',
    // Bind mounts of host directories (system, code, interpreter) are bound again on restore…
    '--external',
    'mnt[]',
    // …except these, which differ per instance or per node process: named, and given on restore.
    '--external',
    'mnt[/nimbus/run]:run',
    '--external',
    'mnt[/etc/passwd]:passwd',
    '--external',
    'mnt[/etc/group]:group',
    // The dump copy's is the runtime's generated file; each restore maps in its own (resolv.ts).
    '--external',
    'mnt[/etc/resolv.conf]:resolv',
  ];
}

/** Host pids of a process's descendants (children first, breadth-first). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    let children: number[] = [];
    try {
      for (const task of readdirSync(`/proc/${p}/task`))
        children = children.concat(
          readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
        );
    } catch {}
    out.push(...children);
    queue.push(...children);
  }
  return out;
}

/** The host pid of the sandbox's init (pid 1 in its own namespace) under `pid`. */
export function sandboxInit(pid: number): number | undefined {
  for (const p of descendants(pid)) {
    try {
      const nspid = /^NSpid:\s+(.*)$/m
        .exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1]
        ?.trim()
        .split(/\s+/);
      if (nspid && nspid.length === 2 && nspid[1] === '1') return p;
    } catch {}
  }
  return undefined;
}

/**
 * The root directory a restore mounts everything on: bubblewrap's root is a tmpfs holding only the
 * mount points and a few symlinks (/bin → usr/bin); CRIU treats it as external, so we keep a copy.
 */
export function writeSkeleton(pid: number, target: string): void {
  const mountinfo = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  for (const line of mountinfo.split('\n')) {
    const point = line.split(' ')[4];
    if (!point || point === '/') continue;
    const inside = `/proc/${pid}/root${point}`;
    const dest = join(target, point);
    if (statSync(inside).isDirectory()) mkdirSync(dest, { recursive: true });
    else {
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, '');
    }
  }
  for (const name of readdirSync(`/proc/${pid}/root`)) {
    const entry = `/proc/${pid}/root/${name}`;
    try {
      const link = readlinkSync(entry);
      if (!existsSync(join(target, name))) symlinkSync(link, join(target, name));
    } catch {
      // Not a symlink.
    }
  }
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    total += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return total;
}

/** The last error lines of a criu log, to say why it failed. */
export function criuErrors(logFile: string): string {
  try {
    const lines = readFileSync(logFile, 'utf8').split('\n');
    const errors = lines.filter((l) => /Error|BUG/.test(l) && !/RLIMIT_NOFILE|iptables|XDG_RUNTIME_DIR/.test(l));
    return (errors.length > 0 ? errors.slice(-3) : lines.filter(Boolean).slice(-2)).map((l) => l.trim()).join('; ');
  } catch {
    return 'no criu log';
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('close', (code) => resolve(code)));
}

/**
 * Starts a copy of `spec`'s instance in a dumpable sandbox, waits until it is ready, dumps it with
 * CRIU (which ends it) and stores the checkpoint in `target` (replaced atomically). Rejects with
 * the reason, criu's own error lines included, when any step fails; nothing is left running.
 */
export async function makeCheckpoint(
  ctx: CheckpointContext,
  spec: InstanceSpec,
  target: string,
  options: { timeoutMs?: number } = {},
): Promise<CheckpointMeta> {
  // Dumped as nobody: the work dir must be reachable by it (the data dir may be 0700).
  const work = mkdtempSync(join(tmpdir().length < 60 ? tmpdir() : '/tmp', 'nimbus-criu-'));
  chmodSync(work, 0o755);
  const runDir = join(work, 'run');
  const imgDir = join(work, IMAGE_DIR);
  for (const d of [runDir, imgDir]) {
    mkdirSync(d);
    chownSync(d, NOBODY, NOBODY);
  }
  const launch = ctx.sandbox.launch({
    name: `ckpt-${spec.id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60)}`,
    memoryMb: spec.memoryMb,
    cpu: spec.cpu,
    network: 'none',
    artifactDir: spec.artifactDir,
    guestDir: ctx.spawn.guestDir,
    runDir,
    nodePath: ctx.spawn.nodePath,
    command: spec.command,
    hostPath: ctx.spawn.baseEnv.PATH ?? '',
  });
  let child: ChildProcess | undefined;
  try {
    const plan = planSpawn(
      { ...spec, id: `${spec.id}-checkpoint` },
      { ...launch.view, command: launch.appCommand },
      ctx.spawn,
    );
    const { command, args } = dumpableLaunch(launch.wrap([plan.command, ...plan.args]));
    child = spawn(command, args, {
      env: plan.env,
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', ...launch.fds],
      detached: true,
    });
    const tail: string[] = [];
    for (const stream of [child.stdout!, child.stderr!])
      readLines(stream, ({ line }) => tail.push(line) > 20 && tail.shift());
    // In the background: a generous wait, the machine may be busy with the instance it copies.
    await waitReady(child, {
      timeoutMs: options.timeoutMs ?? Math.max(spec.startTimeoutMs ?? 0, 60_000),
      tail: () => tail,
    }).catch((err: Error) => {
      // An egress app's init that needs the network cannot get ready here: say so, it is the likely cause.
      if (spec.network !== 'none')
        err.message = `the copy made for the dump (loopback only: its init cannot use the network) did not get ready: ${err.message}`;
      throw err;
    });
    const init = child.pid === undefined ? undefined : sandboxInit(child.pid);
    if (init === undefined) throw new Error('cannot find the sandbox init process to dump');
    // The guest closes its readiness fd just after writing to it: a socket to the host, undumpable.
    for (let i = 0; i < 200 && existsSync(`/proc/${init}/fd/3`); i++) await new Promise((r) => setTimeout(r, 5));
    writeSkeleton(init, join(work, ROOT_DIR));
    const pipes = [readlinkSync(`/proc/${init}/fd/1`), readlinkSync(`/proc/${init}/fd/2`)] as [string, string];
    if (!pipes.every((p) => p.startsWith('pipe:')))
      throw new Error(`stdout/stderr are not pipes (${pipes.join(', ')})`);

    const started = performance.now();
    const dump = spawn(
      ctx.setprivPath,
      [
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        `--inh-caps=${DUMP_CAPS}`,
        `--ambient-caps=${DUMP_CAPS}`,
        ctx.criuPath,
        ...dumpArgs(init, imgDir),
      ],
      { stdio: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
    );
    const code = await exited(dump);
    const dumpMs = performance.now() - started;
    if (code !== 0) throw new Error(`criu dump failed: ${criuErrors(join(imgDir, 'dump.log'))}`);
    await exited(child);
    const meta: CheckpointMeta = {
      pipes,
      createdAt: new Date().toISOString(),
      dumpMs: Math.round(dumpMs),
      bytes: dirBytes(imgDir),
      ...(ctx.criuVersion ? { criuVersion: ctx.criuVersion } : {}),
      platform: ctx.platform,
    };
    writeFileSync(join(work, META_FILE), JSON.stringify(meta));
    rmSync(runDir, { recursive: true, force: true });
    install(work, target);
    return meta;
  } catch (err) {
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }
    throw new NimbusError('NIMBUS_ERR_START_FAILED', `Checkpoint failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await launch.cgroup?.remove();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Moves the finished checkpoint into place (a copy when the data dir is on another filesystem). */
function install(work: string, target: string): void {
  mkdirSync(dirname(target), { recursive: true });
  rmSync(target, { recursive: true, force: true });
  const staging = `${target}.new-${process.pid}`;
  try {
    renameSync(work, staging);
    mkdirSync(work);
  } catch {
    cpSync(work, staging, { recursive: true, verbatimSymlinks: true });
  }
  renameSync(staging, target);
}
