import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NimbusError } from '../../core/errors.js';
import { packageRoot } from '../../core/package-root.js';
import type { ExitInfo, Instance, InstanceSpec, InstanceState, Runtime, RuntimeEvent } from '../types.js';
import { type Channel, createChannel } from './channel.js';
import { readLines } from './lines.js';
import { planSpawn, type SpawnContext, waitReady } from './spawn.js';

/** Options of the process provider. */
export interface ProcessRuntimeOptions {
  /** Node binary running the guest. Default: the current one (process.execPath). */
  nodePath?: string;
  /** Platform variables under each function's env. Merged over PATH (the host's), HOME=/tmp, LANG=C.UTF-8. */
  baseEnv?: Record<string, string>;
  /** Directory of the built guest (function.mjs, watchdog.mjs). Default: dist/guest in the package. */
  guestDir?: string;
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_GRACE_MS = 2000;
/** Output lines kept per instance to explain a start failure. */
const TAIL_LINES = 20;

interface Entry {
  instance: ProcessInstance;
  child: ChildProcess;
  channel: Channel;
  socketPath: string;
  tail: string[];
  stopRequested: boolean;
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

  constructor(spec: InstanceSpec, pid: number | undefined, channel: Channel) {
    this.id = spec.id;
    this.spec = spec;
    this.pid = pid;
    this.#channel = channel;
  }

  fetch(request: Request, options?: { signal?: AbortSignal }): Promise<Response> {
    if (this.state !== 'ready' && this.state !== 'stopping') {
      return Promise.reject(
        new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${this.id} is not running (${this.state})`),
      );
    }
    return this.#channel.fetch(request, options?.signal ?? request.signal);
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

function exitInfo(code: number | null, signal: string | null, expected: boolean): ExitInfo {
  const reason = expected ? 'stopped' : signal ? `killed by ${signal}` : `exited with code ${code}`;
  return { code, signal, reason, expected };
}

/**
 * The process provider: one OS process per instance (the guest function framework, or the
 * watchdog in front of an app), reached over HTTP on a Unix socket.
 */
export function createProcessRuntime(options: ProcessRuntimeOptions = {}): Runtime {
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
  const entries = new Map<string, Entry>();
  const listeners = new Set<(event: RuntimeEvent) => void>();
  let socketDir: string | undefined;
  let counter = 0;

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
  const nextSocketPath = () => {
    // Unix socket paths are limited to ~107 bytes: a short dir and a counter keep us well under.
    const base = tmpdir().length < 60 ? tmpdir() : '/tmp';
    socketDir ??= mkdtempSync(join(base, 'nimbus-rt-'));
    return join(socketDir, `${++counter}.sock`);
  };

  function launch(spec: InstanceSpec): Entry {
    if (entries.has(spec.id)) throw new NimbusError('NIMBUS_ERR_START_FAILED', `Instance ${spec.id} already exists`);
    const socketPath = nextSocketPath();
    const plan = planSpawn(spec, socketPath, ctx);
    // detached: the instance leads its own process group, so stop can signal all of it.
    const child = spawn(plan.command, plan.args, {
      env: plan.env,
      cwd: plan.cwd,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const channel = createChannel(socketPath, spec.id);
    const entry = { child, channel, socketPath, tail: [], stopRequested: false } as unknown as Entry;
    entry.instance = new ProcessInstance(spec, child.pid, channel);
    entry.closed = new Promise<ExitInfo>((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: string | null) => {
        if (done) return;
        done = true;
        entries.delete(spec.id);
        void channel.close();
        rmSync(socketPath, { force: true });
        const exit = exitInfo(code, signal, entry.stopRequested);
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
    for (const stream of ['stdout', 'stderr'] as const) {
      readLines(child[stream]!, ({ line, requestId }) => {
        if (entry.instance.state === 'starting') entry.tail.push(line) > TAIL_LINES && entry.tail.shift();
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
      killGroup(entry.child.pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(entry.child.pid, 'SIGKILL'), stopOptions.graceMs ?? DEFAULT_GRACE_MS);
      await entry.closed;
      clearTimeout(timer);
    })();
    return entry.stopping;
  }

  return {
    name: 'process',
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
      setState(entry, 'ready');
      return entry.instance;
    },
    stop,
    list: () => [...entries.values()].map((e) => e.instance),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      await Promise.all([...entries.keys()].map((id) => stop(id)));
      if (socketDir) rmSync(socketDir, { recursive: true, force: true });
    },
  };
}
