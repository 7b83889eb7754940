import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode, NimbusError } from '../../core/errors.js';
import { packageRoot } from '../../core/package-root.js';
import { JOIN_FAILED_CODE } from '../sandbox/bwrap.js';
import type { InstanceCgroup, InstanceStats } from '../sandbox/cgroups.js';
import { heapLimitMb } from '../sandbox/limits.js';
import { createSandbox, type Sandbox, type SandboxOptions, trackTempDir } from '../sandbox/sandbox.js';
import type { ExitInfo, Instance, InstanceSpec, InstanceState, Runtime, RuntimeEvent } from '../types.js';
import { type Channel, createChannel } from './channel.js';
import { OutputLimiter, type OutputRate, readLines } from './lines.js';
import { procStats } from './proc-stats.js';
import { type InstanceView, planSpawn, type SpawnContext, type SpawnPlan, waitReady } from './spawn.js';

/** Options of the process provider. */
export interface ProcessRuntimeOptions {
  /** Node binary running the guest. Default: the current one (process.execPath). */
  nodePath?: string;
  /** Platform variables under each function's env. Merged over PATH (the host's), HOME=/tmp, LANG=C.UTF-8. */
  baseEnv?: Record<string, string>;
  /** Directory of the built guest (function.mjs, watchdog.mjs). Default: dist/guest in the package. */
  guestDir?: string;
  /** Sandbox settings (bubblewrap + cgroups); `{ mode: 'off' }` runs instances as plain processes. */
  sandbox?: SandboxOptions;
  /**
   * Refuse to run instances without the full sandbox (bubblewrap and cgroup limits): `start` then
   * rejects NIMBUS_ERR_START_FAILED saying what is missing. Default false: run, with a warning.
   */
  requireSandbox?: boolean;
  /** Output rate per instance before lines are dropped. */
  output?: OutputRate;
}

/** The process provider, with what it knows beyond the Runtime contract. */
export interface ProcessRuntime extends Runtime {
  /** True when instances run in bubblewrap with cgroup limits. */
  readonly sandboxed: boolean;
  /** What is missing from the sandbox on this machine (also printed once at start). */
  readonly warnings: string[];
  /** CPU, memory and pids of a live instance, from its cgroup (or /proc unsandboxed). */
  stats(id: string): InstanceStats | undefined;
  /** Freezes every process of an instance (cgroup freezer); false when it has no cgroup. */
  freeze(id: string): Promise<boolean>;
  thaw(id: string): Promise<boolean>;
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_GRACE_MS = 2000;
/** Output lines kept per instance to explain a start failure. */
const TAIL_LINES = 20;
/** How long a failed request waits for its instance's exit to be classified (OOM or crash). */
const CLASSIFY_WAIT_MS = 1000;
/** What V8 prints when the heap limit (--max-old-space-size) is reached. */
const V8_OOM = /JavaScript heap out of memory|Reached heap limit/;

interface Entry {
  instance: ProcessInstance;
  child: ChildProcess;
  channel: Channel;
  socketPath: string;
  tail: string[];
  stopRequested: boolean;
  /** Set when the instance ran out of memory (kernel OOM kill in its cgroup, or V8's heap limit). */
  outOfMemory?: 'kernel' | 'heap';
  cgroup?: InstanceCgroup;
  /** Lowers the CPU quota from the start boost to the steady limit. */
  settle?: () => void;
  /** Removes the socket dir (and cgroup) once the process is gone. */
  cleanup(): Promise<void>;
  stopping?: Promise<void>;
  /** Resolves once the process and its stdio are closed. */
  closed: Promise<ExitInfo>;
}

class ProcessInstance implements Instance {
  readonly id: string;
  readonly spec: InstanceSpec;
  readonly pid?: number;
  state: InstanceState = 'starting';
  #channel: Channel;
  #explain: (err: unknown) => Promise<unknown>;

  /** `explain` turns a crash into the error the caller should see (out of memory, once known). */
  constructor(
    spec: InstanceSpec,
    pid: number | undefined,
    channel: Channel,
    explain: (err: unknown) => Promise<unknown>,
  ) {
    this.id = spec.id;
    this.spec = spec;
    this.pid = pid;
    this.#channel = channel;
    this.#explain = explain;
  }

  fetch(request: Request, options?: { signal?: AbortSignal }): Promise<Response> {
    if (this.state !== 'ready' && this.state !== 'stopping') {
      return Promise.reject(
        new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${this.id} is not running (${this.state})`),
      );
    }
    return this.#channel.fetch(request, options?.signal ?? request.signal).catch(async (err) => {
      throw hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED') ? await this.#explain(err) : err;
    });
  }
}

/** Signals the whole process group (the instance is its leader), so an app's children go too. */
function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Signal names by number, to read bwrap's `128 + n` exit codes. */
const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** The exit as the instance's own process ended: bwrap reports a signal death as 128 + n. */
export function exitInfo(
  code: number | null,
  signal: string | null,
  how: { expected: boolean; sandboxed?: boolean; outOfMemory?: 'kernel' | 'heap'; memoryMb?: number },
): ExitInfo {
  if (how.sandboxed && code !== null && code > 128 && SIGNAL_NAMES.has(code - 128)) {
    signal = SIGNAL_NAMES.get(code - 128)!;
    code = null;
  }
  let reason = signal ? `killed by ${signal}` : `exited with code ${code}`;
  if (how.outOfMemory === 'kernel')
    reason = `ran out of memory: killed by the kernel at its ${how.memoryMb} MB limit (NIMBUS_ERR_OUT_OF_MEMORY)`;
  else if (how.outOfMemory === 'heap')
    reason = `ran out of memory: the JavaScript heap reached its ${heapLimitMb(how.memoryMb ?? 0)} MB limit (NIMBUS_ERR_OUT_OF_MEMORY)`;
  else if (code === JOIN_FAILED_CODE && how.sandboxed !== undefined) reason = 'could not join its cgroup';
  return { code, signal, reason: how.expected ? 'stopped' : reason, expected: how.expected };
}

/** Prints each sandbox warning once per process, loudly. */
const warned = new Set<string>();
function warnOnce(warnings: string[]): void {
  for (const w of warnings) {
    if (warned.has(w)) continue;
    warned.add(w);
    console.warn(`nimbus: WARNING: ${w}`);
  }
}

/**
 * The process provider: one OS process per instance (the guest function framework, or the
 * watchdog in front of an app), reached over HTTP on a Unix socket. Each instance runs in
 * bubblewrap and its own cgroup when the machine allows (sandbox/), else as a plain process.
 */
export function createProcessRuntime(options: ProcessRuntimeOptions = {}): ProcessRuntime {
  const ctx: SpawnContext = {
    nodePath: options.nodePath ?? process.execPath,
    guestDir: options.guestDir ?? join(packageRoot(), 'dist', 'guest'),
    baseEnv: {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: '/tmp',
      LANG: 'C.UTF-8',
      ...options.baseEnv,
    },
  };
  const sandbox: Sandbox = createSandbox(options.sandbox);
  const sandboxed = sandbox.isolated && sandbox.limited;
  warnOnce(sandbox.warnings);
  const entries = new Map<string, Entry>();
  const listeners = new Set<(event: RuntimeEvent) => void>();
  let socketDir: string | undefined;
  let removeSocketDir = () => {};
  let counter = 0;
  /** Cgroup removals still running, awaited by close() before the runtime's parent cgroup goes. */
  const cleanups = new Set<Promise<void>>();

  const emit = (event: RuntimeEvent) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // A faulty subscriber must not break the instance's bookkeeping.
      }
    }
  };
  const setState = (entry: Entry, state: InstanceState, exit?: ExitInfo) => {
    entry.instance.state = state;
    emit(
      exit ? { type: 'state', id: entry.instance.id, state, exit } : { type: 'state', id: entry.instance.id, state },
    );
  };
  const nextSocketBase = () => {
    // Unix socket paths are limited to ~107 bytes: a short dir and a counter keep us well under.
    const base = tmpdir().length < 60 ? tmpdir() : '/tmp';
    if (!socketDir) {
      socketDir = mkdtempSync(join(base, 'nimbus-rt-'));
      removeSocketDir = trackTempDir(socketDir);
    }
    return join(socketDir, String(++counter));
  };

  /** The command for one instance: plain, or wrapped in the sandbox with its socket dir and cgroup. */
  function prepare(spec: InstanceSpec): {
    plan: SpawnPlan;
    socketPath: string;
    fds: number[];
    cgroup?: InstanceCgroup;
    settle?: () => void;
    cleanup: () => Promise<void>;
  } {
    const base = nextSocketBase();
    if (!sandbox.isolated && !sandbox.limited) {
      const socketPath = `${base}.sock`;
      const view = { artifactDir: spec.artifactDir, guestDir: ctx.guestDir, socketPath, nodePath: ctx.nodePath };
      return {
        plan: planSpawn(spec, view, ctx),
        socketPath,
        fds: [],
        cleanup: async () => rmSync(socketPath, { force: true }),
      };
    }
    // A directory per instance, owned by the user it runs as: the guest creates its socket there.
    mkdirSync(base, { mode: 0o700 });
    if (sandbox.uid !== undefined) chownSync(base, sandbox.uid, sandbox.uid);
    const launch = sandbox.launch({
      name: `${counter}-${spec.id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64)}`,
      memoryMb: spec.memoryMb,
      cpu: spec.cpu,
      network: spec.network,
      artifactDir: spec.artifactDir,
      guestDir: ctx.guestDir,
      runDir: base,
      nodePath: ctx.nodePath,
      command: spec.command,
      hostPath: ctx.baseEnv.PATH ?? '',
    });
    const view: InstanceView = { ...launch.view, command: launch.appCommand };
    let inner: SpawnPlan;
    try {
      inner = planSpawn(spec, view, ctx);
    } catch (err) {
      for (const fd of launch.fds) closeSync(fd);
      void launch.cgroup?.remove();
      throw err;
    }
    const wrapped = launch.wrap([inner.command, ...inner.args]);
    return {
      // In bubblewrap the working directory is set inside (--chdir); the host side starts in /.
      plan: { ...wrapped, env: inner.env, cwd: sandbox.isolated ? '/' : inner.cwd },
      socketPath: join(base, 's.sock'),
      fds: launch.fds,
      cgroup: launch.cgroup,
      settle: launch.settle,
      cleanup: async () => {
        rmSync(base, { recursive: true, force: true });
        await launch.cgroup?.remove();
      },
    };
  }

  function launch(spec: InstanceSpec): Entry {
    if (entries.has(spec.id)) throw new NimbusError('NIMBUS_ERR_START_FAILED', `Instance ${spec.id} already exists`);
    if (options.requireSandbox && !sandboxed)
      throw new NimbusError(
        'NIMBUS_ERR_START_FAILED',
        `The sandbox is required (requireSandbox) but unavailable here: ${sandbox.warnings.join('; ')}`,
      );
    let prepared: ReturnType<typeof prepare>;
    try {
      prepared = prepare(spec);
    } catch (err) {
      if (err instanceof NimbusError) throw err;
      throw new NimbusError(
        'NIMBUS_ERR_START_FAILED',
        `Cannot prepare instance ${spec.id}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const { plan, socketPath, fds, cgroup } = prepared;
    // detached: the instance leads its own process group, so stop can signal all of it.
    let child: ChildProcess;
    try {
      child = spawn(plan.command, plan.args, {
        env: plan.env,
        cwd: plan.cwd,
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', ...fds],
        detached: true,
      });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    const channel = createChannel(socketPath, spec.id);
    const entry = { child, channel, socketPath, tail: [], stopRequested: false, cgroup } as unknown as Entry;
    entry.cleanup = prepared.cleanup;
    entry.settle = prepared.settle;
    entry.instance = new ProcessInstance(spec, child.pid, channel, async (err) => {
      // The socket drops a moment before the exit is known: wait for it, briefly, to tell an
      // out-of-memory kill from any other crash.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([entry.closed, new Promise((r) => (timer = setTimeout(r, CLASSIFY_WAIT_MS)))]);
      clearTimeout(timer);
      if (!entry.outOfMemory) return err;
      return new NimbusError(
        'NIMBUS_ERR_OUT_OF_MEMORY',
        `Instance ${spec.id} ran out of memory (${spec.memoryMb} MB) while serving the request`,
        { cause: err },
      );
    });
    entry.closed = new Promise<ExitInfo>((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: string | null) => {
        if (done) return;
        done = true;
        entries.delete(spec.id);
        void channel.close();
        if (!entry.outOfMemory && (cgroup?.oomKills() ?? 0) > 0) entry.outOfMemory = 'kernel';
        flushDropped();
        const exit = exitInfo(code, signal, {
          expected: entry.stopRequested,
          sandboxed: sandbox.isolated ? true : cgroup ? false : undefined,
          outOfMemory: entry.outOfMemory,
          memoryMb: spec.memoryMb,
        });
        const cleaned = entry.cleanup().catch(() => {});
        cleanups.add(cleaned);
        void cleaned.then(() => cleanups.delete(cleaned));
        setState(entry, entry.stopRequested ? 'stopped' : 'failed', exit);
        resolve(exit);
      };
      // The leader is gone: whatever it left behind in its group (an app's children) goes too.
      child.once('exit', () => killGroup(child.pid, 'SIGKILL'));
      child.once('close', finish);
      // A spawn failure (ENOENT, bad cwd) may emit no 'close'.
      child.once('error', () => child.pid === undefined && finish(null, null));
    });
    entries.set(spec.id, entry);
    const limiter = new OutputLimiter(options.output);
    let lastStream: 'stdout' | 'stderr' = 'stderr';
    const flushDropped = () => {
      const dropped = limiter.takeDropped();
      if (dropped > 0)
        emit({ type: 'log', id: spec.id, stream: lastStream, line: limiter.note(dropped), time: Date.now() });
    };
    for (const stream of ['stdout', 'stderr'] as const) {
      readLines(child[stream]!, ({ line, requestId }) => {
        if (entry.instance.state === 'starting') entry.tail.push(line) > TAIL_LINES && entry.tail.shift();
        if (stream === 'stderr' && V8_OOM.test(line)) entry.outOfMemory ??= 'heap';
        if (!limiter.take(line.length)) return;
        flushDropped();
        lastStream = stream;
        emit({ type: 'log', id: spec.id, stream, line, ...(requestId ? { requestId } : {}), time: Date.now() });
      });
    }
    setState(entry, 'starting');
    return entry;
  }

  async function stop(id: string, stopOptions: { graceMs?: number } = {}): Promise<void> {
    const entry = entries.get(id);
    if (!entry) return;
    entry.stopping ??= (async () => {
      entry.stopRequested = true;
      if (entry.instance.state === 'ready') setState(entry, 'stopping');
      // A frozen instance cannot drain: thaw it first.
      await entry.cgroup?.thaw().catch(() => {});
      killGroup(entry.child.pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(entry.child.pid, 'SIGKILL'), stopOptions.graceMs ?? DEFAULT_GRACE_MS);
      await entry.closed;
      clearTimeout(timer);
    })();
    return entry.stopping;
  }

  return {
    name: 'process',
    sandboxed,
    warnings: sandbox.warnings,
    async start(spec, startOptions = {}) {
      const signal = startOptions.signal;
      if (signal?.aborted)
        throw new NimbusError('NIMBUS_ERR_START_FAILED', 'The start was aborted', { cause: signal.reason });
      const entry = launch(spec);
      try {
        await waitReady(entry.child, {
          timeoutMs: spec.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
          signal,
          tail: () => entry.tail,
        });
      } catch (err) {
        const stopped = entry.stopRequested;
        killGroup(entry.child.pid, 'SIGKILL');
        await entry.closed;
        if (stopped)
          throw new NimbusError('NIMBUS_ERR_START_FAILED', `Instance ${spec.id} was stopped while starting`, {
            cause: err,
          });
        throw err;
      }
      entry.tail.length = 0;
      try {
        entry.settle?.();
      } catch {
        // The cgroup went with a process that died this instant: the exit reports it.
      }
      setState(entry, 'ready');
      return entry.instance;
    },
    stop,
    list: () => [...entries.values()].map((e) => e.instance),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stats(id) {
      const entry = entries.get(id);
      if (!entry) return undefined;
      return entry.cgroup ? entry.cgroup.stats() : procStats(entry.child.pid);
    },
    async freeze(id) {
      const cgroup = entries.get(id)?.cgroup;
      if (!cgroup) return false;
      await cgroup.freeze();
      return true;
    },
    async thaw(id) {
      const cgroup = entries.get(id)?.cgroup;
      if (!cgroup) return false;
      await cgroup.thaw();
      return true;
    },
    async close() {
      await Promise.all([...entries.keys()].map((id) => stop(id)));
      await Promise.all(cleanups);
      sandbox.close();
      removeSocketDir();
    },
  };
}
