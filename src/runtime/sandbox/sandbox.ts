/**
 * The sandbox of the process provider: detects once what the machine offers (bubblewrap that
 * actually runs, cgroups that are writable), then turns each instance's plain command into one that
 * runs inside bubblewrap and its own cgroup. Where something is missing it says so in `warnings`
 * and the provider runs instances unsandboxed (or refuses, with `requireSandbox`).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { bwrapArgs, type FdBind, INSIDE, launchCommand } from './bwrap.js';
import { type CgroupHost, type InstanceCgroup, openCgroups } from './cgroups.js';
import { type InstanceLimits, type LimitOptions, limitsFor } from './limits.js';
import { buildSeccompFilter, encodeFilter, seccompUnsupported } from './seccomp.js';
import { prefixToBind, resolveProgram, SANDBOX_PATH, type SystemMount, systemMounts } from './system-paths.js';

export interface SandboxOptions {
  /** `auto` (default): sandbox when the machine allows; `off`: never. */
  mode?: 'auto' | 'off';
  /** bubblewrap binary. Default: `bwrap` on PATH. */
  bwrapPath?: string;
  /** Size of each instance's private /tmp, MB. Default 64. */
  tmpSizeMb?: number;
  /** User that instances run as when Nimbus runs as root. Default nobody (65534). */
  user?: { uid: number; gid: number };
  /** Load the seccomp filter (seccomp.ts) into every instance. Default true; false only to measure it. */
  seccomp?: boolean;
  limits?: LimitOptions;
  /**
   * Host file instances see at /etc/resolv.conf (default: the host's own, a symlink followed). The
   * CRIU runtime gives its dump copies a generated one (criu/resolv.ts); tests a file of their own.
   */
  resolvConf?: string;
}

/** Host side of one sandboxed instance. */
export interface SandboxedLaunch {
  /** The host command that runs `argv` (as the instance sees it) in the sandbox. */
  wrap(argv: string[]): { command: string; args: string[] };
  /** Descriptors to pass as stdio 4, 5, … (the numbers the bwrap arguments name). Close after spawn. */
  fds: number[];
  /** How the instance sees its paths (code, guest, socket) and PATH. */
  view: { artifactDir: string; guestDir: string; socketPath: string; nodePath: string; PATH: string };
  /** App mode: the command with its program resolved for the sandbox. */
  appCommand?: string[];
  cgroup?: InstanceCgroup;
  /** Lowers the CPU quota from the start boost to the steady limit (call once ready). */
  settle(): void;
}

export interface LaunchRequest {
  /** A short unique name (cgroup directory). */
  name: string;
  memoryMb: number;
  cpu?: number;
  network?: 'none' | 'egress';
  artifactDir: string;
  guestDir: string;
  /** Host directory for the socket, writable by the instance's user. */
  runDir: string;
  nodePath: string;
  /** App mode's argv; its program is resolved on `hostPath`. */
  command?: string[];
  hostPath: string;
}

export interface Sandbox {
  /** Instances run in bubblewrap. */
  readonly isolated: boolean;
  /** Instances run in cgroups with limits. */
  readonly limited: boolean;
  /** Instances run under the seccomp filter (seccomp.ts). */
  readonly seccomp: boolean;
  /** What is missing, one sentence each; empty when fully sandboxed. */
  readonly warnings: string[];
  /** The uid the instance runs as on the host (owner of its socket dir), when Nimbus is root. */
  readonly uid?: number;
  /** Host command for an instance; throws when its cgroup cannot be made. */
  launch(request: LaunchRequest): SandboxedLaunch;
  /** The cgroup limits of an instance of `memoryMb` and `cpu` (limits.ts, with this sandbox's options). */
  limitsFor(memoryMb: number, cpu?: number): InstanceLimits;
  close(): void;
}

const NOBODY = { uid: 65534, gid: 65534 };

/**
 * Temporary dirs of runtimes not closed yet, removed when the process exits anyway (a test that
 * never closes its runtime, a CLI that exits on an error), so /tmp does not collect them.
 */
const liveTempDirs = new Set<string>();
let exitHook = false;
export function trackTempDir(dir: string): () => void {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const d of liveTempDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  liveTempDirs.add(dir);
  return () => {
    liveTempDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}
const STDIO_BASE = 4;

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {}
  }
  return undefined;
}

/** Detects what the machine offers (runs bubblewrap once) and prepares the shared pieces. */
export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const warnings: string[] = [];
  const off = options.mode === 'off';
  const root = process.geteuid?.() === 0;
  const user = root ? { ...(options.user ?? NOBODY), setprivPath: findOnPath('setpriv') ?? '' } : undefined;
  const system = systemMounts('/', options.resolvConf ? { '/etc/resolv.conf': options.resolvConf } : {});
  const tmpSizeBytes = (options.tmpSizeMb ?? 64) * 1024 * 1024;

  // Generated passwd/group: programs that look up their own user find one; the host's stay unseen.
  const etcDir = mkdtempSync(join(tmpdir(), 'nimbus-etc-'));
  const removeEtcDir = trackTempDir(etcDir);
  chmodSync(etcDir, 0o755);
  const uid = user?.uid ?? process.getuid?.() ?? 65534;
  const gid = user?.gid ?? process.getgid?.() ?? 65534;
  writeFileSync(
    join(etcDir, 'passwd'),
    `root:x:0:0:root:/root:/usr/sbin/nologin\nnimbus:x:${uid}:${gid}:nimbus:/tmp:/usr/sbin/nologin\n`,
  );
  writeFileSync(join(etcDir, 'group'), `root:x:0:\nnimbus:x:${gid}:\n`);
  const files = [
    { source: join(etcDir, 'passwd'), dest: '/etc/passwd' },
    { source: join(etcDir, 'group'), dest: '/etc/group' },
  ];

  let bwrapPath: string | undefined;
  if (!off) {
    bwrapPath = options.bwrapPath ?? findOnPath('bwrap');
    const reason = !bwrapPath
      ? 'bubblewrap (bwrap) is not installed'
      : user && !user.setprivPath
        ? 'setpriv (util-linux) is missing, needed to drop root before bubblewrap'
        : probe(bwrapPath, user, system, files, tmpSizeBytes);
    if (reason) {
      warnings.push(`Instances are NOT isolated: ${reason}`);
      bwrapPath = undefined;
    }
  }
  // The filter is written once and opened per instance (bwrap reads its descriptor to the end).
  let seccompFile: string | undefined;
  if (bwrapPath && options.seccomp !== false) {
    const file = join(etcDir, 'seccomp.bpf');
    writeFileSync(file, encodeFilter(buildSeccompFilter()));
    const reason = seccompUnsupported() ?? probe(bwrapPath, user, system, files, tmpSizeBytes, file);
    if (reason) warnings.push(`Instances run WITHOUT a seccomp filter: ${reason}`);
    else seccompFile = file;
  }
  let cgroups: CgroupHost | undefined;
  if (!off) {
    const opened = openCgroups();
    if ('reason' in opened) warnings.push(`Instances have NO resource limits: ${opened.reason}`);
    else cgroups = opened;
  }
  if (off) warnings.push('Instances are NOT isolated and have NO resource limits: the sandbox is turned off');

  return {
    isolated: bwrapPath !== undefined,
    limited: cgroups !== undefined,
    seccomp: seccompFile !== undefined,
    warnings,
    uid: user?.uid,
    limitsFor: (memoryMb, cpu) => limitsFor(memoryMb, cpu, options.limits),
    launch(req) {
      const limits = limitsFor(req.memoryMb, req.cpu, options.limits);
      const cgroup = cgroups?.create(req.name, limits);
      const settle = () => cgroup?.setCpuQuota(limits.cpuQuotaUs);
      if (!bwrapPath) {
        // cgroups without bubblewrap: still join the cgroup through the same script.
        const socketPath = join(req.runDir, 's.sock');
        return {
          wrap: (argv) =>
            launchCommand({ bwrapPath: argv[0]!, bwrapArgs: argv.slice(1), procsFiles: cgroup?.procsFiles ?? [] }),
          fds: [],
          view: {
            artifactDir: req.artifactDir,
            guestDir: req.guestDir,
            socketPath,
            nodePath: req.nodePath,
            PATH: req.hostPath,
          },
          appCommand: req.command,
          cgroup,
          settle,
        };
      }
      const fds: number[] = [];
      const binds: FdBind[] = [];
      const bind = (hostDir: string, dest: string, writable = false) => {
        fds.push(openSync(hostDir, 'r'));
        binds.push({ fd: STDIO_BASE + fds.length - 1, dest, writable });
      };
      try {
        bind(req.artifactDir, INSIDE.code);
        bind(req.guestDir, INSIDE.guest);
        bind(req.runDir, INSIDE.run, true);
        if (seccompFile) fds.push(openSync(seccompFile, 'r'));
        const seccompFd = seccompFile ? STDIO_BASE + fds.length - 1 : undefined;
        const node = prefixToBind(req.nodePath, system);
        const prefixes = new Set<string>();
        if (node.bind) prefixes.add(node.bind);
        let command = req.command;
        if (command?.length) {
          const program = resolveProgram(command[0]!, req.hostPath, system);
          if (program) {
            command = [program.path, ...command.slice(1)];
            if (program.bind) prefixes.add(program.bind);
          }
        }
        for (const prefix of prefixes) bind(prefix, prefix);
        const view = {
          artifactDir: INSIDE.code,
          guestDir: INSIDE.guest,
          socketPath: `${INSIDE.run}/s.sock`,
          nodePath: node.path,
          PATH: SANDBOX_PATH,
        };
        const spec = {
          cwd: INSIDE.code,
          network: req.network ?? 'egress',
          tmpSizeBytes,
          system,
          files,
          binds,
          dropTo: user,
          seccompFd,
        } as const;
        return {
          wrap: (argv) =>
            launchCommand({
              bwrapPath: bwrapPath!,
              bwrapArgs: bwrapArgs({ ...spec, argv }),
              procsFiles: cgroup?.procsFiles ?? [],
            }),
          fds,
          view,
          appCommand: command,
          cgroup,
          settle,
        };
      } catch (err) {
        for (const fd of fds) closeQuietly(fd);
        void cgroup?.remove();
        throw err;
      }
    },
    close() {
      cgroups?.close();
      removeEtcDir();
    },
  };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {}
}

/** Runs `true` in a sandbox like an instance's; the reason it fails, or undefined when it works. */
function probe(
  bwrapPath: string,
  user: { uid: number; gid: number; setprivPath: string } | undefined,
  system: SystemMount[],
  files: { source: string; dest: string }[],
  tmpSizeBytes: number,
  /** Also load this seccomp filter: does this bubblewrap know --seccomp, and does setpriv run under it. */
  seccompFile?: string,
): string | undefined {
  const fd = seccompFile ? openSync(seccompFile, 'r') : undefined;
  const args = bwrapArgs({
    argv: ['/bin/true'],
    cwd: '/',
    network: 'none',
    tmpSizeBytes,
    system,
    files,
    binds: [],
    dropTo: user,
    seccompFd: fd === undefined ? undefined : STDIO_BASE,
  });
  const { command, args: full } = launchCommand({ bwrapPath, bwrapArgs: args, procsFiles: [] });
  let result: ReturnType<typeof spawnSync>;
  try {
    result = spawnSync(command, full, {
      encoding: 'utf8',
      timeout: 10_000,
      env: { PATH: '/usr/bin:/bin' },
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', ...(fd === undefined ? [] : [fd])],
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (result.status === 0) return undefined;
  const why = (String(result.stderr) || result.error?.message || `exit code ${result.status}`).trim().split('\n')[0];
  return seccompFile ? `bubblewrap cannot load it here (${why})` : `bubblewrap cannot create a sandbox here (${why})`;
}
