/**
 * Spawning of the process provider: one OS process, plain or wrapped in the sandbox (bubblewrap,
 * its own cgroup, its own socket dir), for an instance of a known function or for a pool cell
 * that learns its function later (cell-pool.ts). What happens to the process afterwards (an
 * instance's bookkeeping, a cell's waiting) belongs to the callers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { NimbusError } from '../../core/errors.js';
import type { InstanceCgroup } from '../sandbox/cgroups.js';
import { type Sandbox, trackTempDir } from '../sandbox/sandbox.js';
import type { InstanceSpec } from '../types.js';
import { type OutputLine, readLines } from './lines.js';
import { type InstanceView, planCell, planSpawn, type SpawnContext, type SpawnPlan } from './spawn.js';

/** Output lines kept to explain a start failure. */
export const TAIL_LINES = 20;

/** One spawned process (an instance, or a cell waiting for its function). */
export interface Launched {
  readonly child: ChildProcess;
  readonly socketPath: string;
  /** How the process sees its paths (in the sandbox: the fixed INSIDE ones). */
  readonly view: InstanceView;
  /** Cells in the sandbox: the empty host directory bound read-only at view.artifactDir. */
  readonly codeDir?: string;
  /** A cell's stdin, where its one specialise message goes. */
  readonly stdin?: Writable;
  readonly cgroup?: InstanceCgroup;
  /** Lowers the CPU quota from the start boost to the steady limit. */
  readonly settle?: () => void;
  /** Resolves once the process and its stdio are closed. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** Receives every output line; until set, lines only go to `tail`. */
  onLine?: (stream: 'stdout' | 'stderr', line: OutputLine) => void;
  /** The last lines, kept while `onLine` is unset. */
  readonly tail: string[];
  /** Removes the socket dir, code dir and cgroup once the process is gone. Never throws. */
  cleanup(): Promise<void>;
}

/** The shape of a pool cell: what cannot change after spawn (heap limit, network namespace). */
export interface CellShape {
  memoryMb: number;
  network: 'none' | 'egress';
}

export interface Launcher {
  /** Spawns an instance of `spec`. Throws START_FAILED when it cannot be prepared. */
  instance(spec: InstanceSpec): Launched;
  /** Spawns a pool cell of `shape`, under `name` (its cgroup). */
  cell(shape: CellShape, name: string): Launched;
  /** Removes the socket dir (every process must be gone). */
  close(): void;
}

/** Signals the whole process group (the process is its leader), so an app's children go too. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

interface Target {
  name: string;
  memoryMb: number;
  cpu?: number;
  network?: 'none' | 'egress';
  /** Host directory of the code; unset for a cell (an empty one of its own is made). */
  artifactDir?: string;
  command?: string[];
  plan: (view: InstanceView) => SpawnPlan;
}

export function createLauncher(ctx: SpawnContext, sandbox: Sandbox): Launcher {
  let socketDir: string | undefined;
  let removeSocketDir = () => {};
  let counter = 0;
  const nextBase = () => {
    // Unix socket paths are limited to ~107 bytes: a short dir and a counter keep us well under.
    const base = tmpdir().length < 60 ? tmpdir() : '/tmp';
    if (!socketDir) {
      socketDir = mkdtempSync(join(base, 'nimbus-rt-'));
      removeSocketDir = trackTempDir(socketDir);
    }
    return join(socketDir, String(++counter));
  };

  /** The command for one process: plain, or wrapped in the sandbox with its socket dir and cgroup. */
  function prepare(target: Target) {
    const base = nextBase();
    if (!sandbox.isolated && !sandbox.limited) {
      const socketPath = `${base}.sock`;
      const view = {
        artifactDir: target.artifactDir ?? '/',
        guestDir: ctx.guestDir,
        socketPath,
        nodePath: ctx.nodePath,
      };
      return {
        plan: target.plan(view),
        view,
        socketPath,
        fds: [] as number[],
        cleanup: async () => rmSync(socketPath, { force: true }),
      };
    }
    // A directory per process, owned by the user it runs as: the guest creates its socket there.
    mkdirSync(base, { mode: 0o700 });
    if (sandbox.uid !== undefined) chownSync(base, sandbox.uid, sandbox.uid);
    // A cell's code dir: empty and root's until its function's files are linked in.
    const codeDir = !target.artifactDir && sandbox.isolated ? `${base}.code` : undefined;
    if (codeDir) mkdirSync(codeDir, { mode: 0o755 });
    const removeDirs = () => {
      rmSync(base, { recursive: true, force: true });
      if (codeDir) rmSync(codeDir, { recursive: true, force: true });
    };
    let launch: ReturnType<Sandbox['launch']>;
    try {
      launch = sandbox.launch({
        name: `${counter}-${target.name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64)}`,
        memoryMb: target.memoryMb,
        cpu: target.cpu,
        network: target.network,
        artifactDir: target.artifactDir ?? codeDir ?? '/',
        guestDir: ctx.guestDir,
        runDir: base,
        nodePath: ctx.nodePath,
        command: target.command,
        hostPath: ctx.baseEnv.PATH ?? '',
      });
    } catch (err) {
      removeDirs();
      throw err;
    }
    const view: InstanceView = { ...launch.view, command: launch.appCommand };
    let inner: SpawnPlan;
    try {
      inner = target.plan(view);
    } catch (err) {
      for (const fd of launch.fds) closeSync(fd);
      removeDirs();
      void launch.cgroup?.remove();
      throw err;
    }
    const wrapped = launch.wrap([inner.command, ...inner.args]);
    return {
      // In bubblewrap the working directory is set inside (--chdir); the host side starts in /.
      plan: { ...wrapped, env: inner.env, cwd: sandbox.isolated ? '/' : inner.cwd },
      view,
      codeDir,
      socketPath: join(base, 's.sock'),
      fds: launch.fds,
      cgroup: launch.cgroup,
      settle: launch.settle,
      cleanup: async () => {
        removeDirs();
        await launch.cgroup?.remove();
      },
    };
  }

  function run(target: Target, cell: boolean): Launched {
    let prepared: ReturnType<typeof prepare>;
    try {
      prepared = prepare(target);
    } catch (err) {
      if (err instanceof NimbusError) throw err;
      throw new NimbusError(
        'NIMBUS_ERR_START_FAILED',
        `Cannot prepare instance ${target.name}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const { plan, fds } = prepared;
    // detached: the process leads its own group, so stop can signal all of it.
    let child: ChildProcess;
    try {
      child = spawn(plan.command, plan.args, {
        env: plan.env,
        cwd: plan.cwd,
        stdio: [cell ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe', ...fds],
        detached: true,
      });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    // A cell that dies before it is given its function must not crash the host with EPIPE.
    child.stdin?.on('error', () => {});
    const launched: Launched = {
      child,
      socketPath: prepared.socketPath,
      view: prepared.view,
      codeDir: prepared.codeDir,
      stdin: child.stdin ?? undefined,
      cgroup: prepared.cgroup,
      settle: prepared.settle,
      tail: [],
      cleanup: () => prepared.cleanup().catch(() => {}),
      exited: new Promise((resolve) => {
        // The leader is gone: whatever it left behind in its group (an app's children) goes too.
        child.once('exit', () => killGroup(child.pid, 'SIGKILL'));
        child.once('close', (code, signal) => resolve({ code, signal }));
        // A spawn failure (ENOENT, bad cwd) may emit no 'close'.
        child.once('error', () => child.pid === undefined && resolve({ code: null, signal: null }));
      }),
    };
    for (const stream of ['stdout', 'stderr'] as const) {
      readLines(child[stream]!, (line) => {
        if (launched.onLine) return launched.onLine(stream, line);
        if (launched.tail.push(line.line) > TAIL_LINES) launched.tail.shift();
      });
    }
    return launched;
  }

  return {
    instance: (spec) =>
      run(
        {
          name: spec.id,
          memoryMb: spec.memoryMb,
          cpu: spec.cpu,
          network: spec.network,
          artifactDir: spec.artifactDir,
          command: spec.command,
          plan: (view) => planSpawn(spec, view, ctx),
        },
        false,
      ),
    cell: (shape, name) =>
      run(
        { name, memoryMb: shape.memoryMb, network: shape.network, plan: (view) => planCell(shape.memoryMb, view, ctx) },
        true,
      ),
    close: () => removeSocketDir(),
  };
}
