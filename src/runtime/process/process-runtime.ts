import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import type { AbortLike } from '../../core/abort.js';
import { hasCode, NimbusError } from '../../core/errors.js';
import { JOIN_FAILED_CODE } from '../sandbox/bwrap.js';
import type { InstanceStats } from '../sandbox/cgroups.js';
import { heapLimitMb } from '../sandbox/limits.js';
import { createSandbox, type Sandbox, type SandboxOptions } from '../sandbox/sandbox.js';
import type { ExitInfo, Instance, InstanceSpec, InstanceState, Runtime, RuntimeEvent, StartMode } from '../types.js';
import { type CellInfo, type CellPool, createCellPool } from './cell-pool.js';
import { type Channel, createChannel } from './channel.js';
import { type CellShape, createLauncher, killGroup, type Launched, TAIL_LINES } from './launch.js';
import { OutputLimiter, type OutputRate } from './lines.js';
import { procStats } from './proc-stats.js';
import { type SpawnContext, spawnContext, waitReady } from './spawn.js';
import { cellShapeOf, prepareCell, sendSpecialise } from './specialise.js';

/** Options of the process provider. */
export interface ProcessRuntimeOptions {
  /** Node binary running the guest. Default: the current one (process.execPath). */
  nodePath?: string;
  /** Platform variables under each function's env. Merged over PATH (the host's), HOME=/tmp, LANG=C.UTF-8. */
  baseEnv?: Record<string, string>;
  /** Directory of the built guest (function.mjs, watchdog.mjs, cell.mjs). Default: dist/guest in the package. */
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
  /**
   * Warm cells kept per cell shape for node functions (cell-pool.ts); 0 disables the pool. Default
   * 2 when instances are fully sandboxed, else 0.
   */
  poolSize?: number;
  /** Memory sizes (MB) whose cells are kept warm from the start. Default [256] (the manifest default). */
  poolMemoryMb?: number[];
  /** Pool tuning beyond its size (tests): free-memory reading, reserve, warm-up timeout. */
  poolTuning?: { freeMemory?: () => number; reserveBytes?: number; warmTimeoutMs?: number };
}

/** The process provider, with what it knows beyond the Runtime contract. */
export interface ProcessRuntime extends Runtime {
  /** True when instances run in bubblewrap with cgroup limits. */
  readonly sandboxed: boolean;
  /** True when sandboxed instances also run under the seccomp filter (sandbox/seccomp.ts). */
  readonly seccomp: boolean;
  /** What is missing from the sandbox on this machine (also printed once at start). */
  readonly warnings: string[];
  /** The host uid instances run as when it is not the node's own (sandboxed, Nimbus root). */
  readonly instanceUid?: number;
  /** CPU, memory and pids of a live instance, from its cgroup (or /proc unsandboxed). */
  stats(id: string): InstanceStats | undefined;
  /** Freezes every process of an instance (cgroup freezer); false when it has no cgroup. */
  freeze(id: string): Promise<boolean>;
  thaw(id: string): Promise<boolean>;
  /** The warm pool's cells not taken yet (empty when the pool is off). */
  pool(): CellInfo[];
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_GRACE_MS = 2000;
const DEFAULT_POOL_SIZE = 2;
/** How long after a cold start the pool starts refilling (a spawn blocks the event loop ≈ 1-5 ms). */
const REFILL_DELAY_MS = 50;
/** How long a failed request waits for its instance's exit to be classified (OOM or crash). */
const CLASSIFY_WAIT_MS = 1000;
/** What V8 prints when the heap limit (--max-old-space-size) is reached. */
const V8_OOM = /JavaScript heap out of memory|Reached heap limit/;

interface Entry {
  instance: ProcessInstance;
  launched: Launched;
  channel: Channel;
  tail: string[];
  stopRequested: boolean;
  /** Set when the instance ran out of memory (kernel OOM kill in its cgroup, or V8's heap limit). */
  outOfMemory?: 'kernel' | 'heap';
  /** Lowers the CPU quota from the start boost to the steady limit. */
  settle?: () => void;
  stopping?: Promise<void>;
  /** Resolves once the process and its stdio are closed. */
  closed: Promise<ExitInfo>;
}

class ProcessInstance implements Instance {
  readonly id: string;
  readonly spec: InstanceSpec;
  readonly pid?: number;
  readonly startMode: StartMode;
  /** The init time the guest reported on its readiness line (automatic snapshots use it). */
  initMs?: number;
  state: InstanceState = 'starting';
  #channel: Channel;
  #explain: (err: unknown) => Promise<unknown>;

  /** `explain` turns a crash into the error the caller should see (out of memory, once known). */
  constructor(
    spec: InstanceSpec,
    pid: number | undefined,
    startMode: StartMode,
    channel: Channel,
    explain: (err: unknown) => Promise<unknown>,
  ) {
    this.id = spec.id;
    this.spec = spec;
    this.pid = pid;
    this.startMode = startMode;
    this.#channel = channel;
    this.#explain = explain;
  }

  fetch(request: Request, options?: { signal?: AbortLike }): Promise<Response> {
    if (this.state !== 'ready' && this.state !== 'stopping') {
      return Promise.reject(
        new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${this.id} is not running (${this.state})`),
      );
    }
    return this.#channel.fetch(request, options?.signal ?? request.signal).catch(this.#explainCrash);
  }

  /** App mode only: its watchdog carries an upgraded connection to the app (guest/watchdog.ts). */
  get tunnel(): (() => Promise<Duplex>) | undefined {
    if (this.spec.kind !== 'app') return undefined;
    return () =>
      this.state === 'ready' || this.state === 'stopping'
        ? this.#channel.tunnel()
        : Promise.reject(
            new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${this.id} is not running (${this.state})`),
          );
  }

  // One closure per instance rather than one per request.
  readonly #explainCrash = async (err: unknown): Promise<never> => {
    throw hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED') ? await this.#explain(err) : err;
  };
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
 * watchdog in front of an app), reached over a Unix socket. Each instance runs in bubblewrap and
 * its own cgroup when the machine allows (sandbox/), else as a plain process. A node function's
 * cold start takes a warm pool cell when one of its shape is ready (cell-pool.ts), else spawns.
 */
export function createProcessRuntime(options: ProcessRuntimeOptions = {}): ProcessRuntime {
  const ctx: SpawnContext = spawnContext(options);
  const sandbox: Sandbox = createSandbox(options.sandbox);
  const sandboxed = sandbox.isolated && sandbox.limited;
  warnOnce(sandbox.warnings);
  const launcher = createLauncher(ctx, sandbox);
  const poolSize = options.poolSize ?? (sandboxed ? DEFAULT_POOL_SIZE : 0);
  const cells: CellPool | undefined =
    poolSize > 0 && (sandboxed || !options.requireSandbox)
      ? createCellPool(launcher, {
          size: poolSize,
          shapes: (options.poolMemoryMb ?? [256]).map((memoryMb): CellShape => ({ memoryMb, network: 'egress' })),
          ...options.poolTuning,
          warn: (message) => warnOnce([message]),
        })
      : undefined;
  cells?.refill();
  const entries = new Map<string, Entry>();
  const listeners = new Set<(event: RuntimeEvent) => void>();
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

  /** Makes a spawned process (or a taken cell) the instance of `spec`: channel, logs, exit. */
  function track(launched: Launched, spec: InstanceSpec, mode: StartMode): Entry {
    const { child, cgroup } = launched;
    const channel = createChannel(launched.socketPath, spec.id);
    const entry = { launched, channel, tail: [], stopRequested: false, settle: launched.settle } as unknown as Entry;
    entry.instance = new ProcessInstance(spec, child.pid, mode, channel, async (err) => {
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
    const limiter = new OutputLimiter(options.output);
    let lastStream: 'stdout' | 'stderr' = 'stderr';
    const flushDropped = () => {
      const dropped = limiter.takeDropped();
      if (dropped > 0)
        emit({ type: 'log', id: spec.id, stream: lastStream, line: limiter.note(dropped), time: Date.now() });
    };
    entry.closed = launched.exited.then(({ code, signal }) => {
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
      const cleaned = launched.cleanup();
      cleanups.add(cleaned);
      void cleaned.then(() => cleanups.delete(cleaned));
      setState(entry, entry.stopRequested ? 'stopped' : 'failed', exit);
      return exit;
    });
    entries.set(spec.id, entry);
    launched.onLine = (stream, { line, requestId }) => {
      if (entry.instance.state === 'starting') entry.tail.push(line) > TAIL_LINES && entry.tail.shift();
      if (stream === 'stderr' && V8_OOM.test(line)) entry.outOfMemory ??= 'heap';
      if (!limiter.take(line.length)) return;
      flushDropped();
      lastStream = stream;
      emit({ type: 'log', id: spec.id, stream, line, ...(requestId ? { requestId } : {}), time: Date.now() });
    };
    setState(entry, 'starting');
    return entry;
  }

  /**
   * A warm cell made the instance of `spec`, or undefined (no cell, or it could not be given the
   * function's code and limits: it is killed and the caller spawns). `begin` sends the specialise
   * message; call it once the wait for readiness listens.
   */
  function fromPool(spec: InstanceSpec): { entry: Entry; begin: () => void } | undefined {
    const shape = cellShapeOf(spec);
    const cell = shape && cells?.take(shape);
    if (!cell) return undefined;
    let prepared: ReturnType<typeof prepareCell>;
    try {
      prepared = prepareCell(cell, spec, sandbox, ctx);
    } catch (err) {
      warnOnce([`warm pool: a cell could not be specialised, spawning instead: ${(err as Error).message}`]);
      killGroup(cell.child.pid, 'SIGKILL');
      void cell.exited.then(() => cell.cleanup());
      return undefined;
    }
    const entry = track(cell, spec, 'pool');
    const { limits } = prepared;
    if (limits) entry.settle = () => cell.cgroup?.setCpuQuota(limits.cpuQuotaUs);
    return { entry, begin: () => sendSpecialise(cell, prepared.message) };
  }

  function launch(spec: InstanceSpec): { entry: Entry; begin?: () => void } {
    if (entries.has(spec.id)) throw new NimbusError('NIMBUS_ERR_START_FAILED', `Instance ${spec.id} already exists`);
    if (options.requireSandbox && !sandboxed)
      throw new NimbusError(
        'NIMBUS_ERR_START_FAILED',
        `The sandbox is required (requireSandbox) but unavailable here: ${sandbox.warnings.join('; ')}`,
      );
    return fromPool(spec) ?? { entry: track(launcher.instance(spec), spec, spec.snapshotBlob ? 'snapshot' : 'spawn') };
  }

  async function stop(id: string, stopOptions: { graceMs?: number } = {}): Promise<void> {
    const entry = entries.get(id);
    if (!entry) return;
    entry.stopping ??= (async () => {
      entry.stopRequested = true;
      if (entry.instance.state === 'ready') setState(entry, 'stopping');
      // A frozen instance cannot drain: thaw it first.
      await entry.launched.cgroup?.thaw().catch(() => {});
      const pid = entry.launched.child.pid;
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), stopOptions.graceMs ?? DEFAULT_GRACE_MS);
      await entry.closed;
      clearTimeout(timer);
    })();
    return entry.stopping;
  }

  return {
    name: 'process',
    sandboxed,
    seccomp: sandbox.isolated && sandbox.seccomp,
    warnings: sandbox.warnings,
    // Without bubblewrap nothing drops root (sandbox.ts): instances then run as the node itself.
    instanceUid: sandbox.isolated ? sandbox.uid : undefined,
    async start(spec, startOptions = {}) {
      const signal = startOptions.signal;
      if (signal?.aborted)
        throw new NimbusError('NIMBUS_ERR_START_FAILED', 'The start was aborted', { cause: signal.reason });
      const { entry, begin } = launch(spec);
      const { child } = entry.launched;
      try {
        const ready = waitReady(child, {
          timeoutMs: spec.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
          signal,
          tail: () => entry.tail,
        });
        begin?.();
        const message = await ready;
        if (typeof message.initMs === 'number') entry.instance.initMs = message.initMs;
      } catch (err) {
        const stopped = entry.stopRequested;
        killGroup(child.pid, 'SIGKILL');
        await entry.closed;
        if (stopped)
          throw new NimbusError('NIMBUS_ERR_START_FAILED', `Instance ${spec.id} was stopped while starting`, {
            cause: err,
          });
        throw err;
      } finally {
        // Refills wait for the cold start (and its first request) they would compete with.
        cells?.refill(REFILL_DELAY_MS);
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
      return entry.launched.cgroup ? entry.launched.cgroup.stats() : procStats(entry.launched.child.pid);
    },
    async freeze(id) {
      const cgroup = entries.get(id)?.launched.cgroup;
      if (!cgroup) return false;
      await cgroup.freeze();
      return true;
    },
    async thaw(id) {
      const cgroup = entries.get(id)?.launched.cgroup;
      if (!cgroup) return false;
      await cgroup.thaw();
      return true;
    },
    pool: () => cells?.info() ?? [],
    async close() {
      await Promise.all([cells?.close(), ...[...entries.keys()].map((id) => stop(id))]);
      await Promise.all(cleanups);
      sandbox.close();
      launcher.close();
    },
  };
}
