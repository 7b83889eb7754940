/**
 * The isolate provider (`runtime: isolate`): every instance is its own V8 isolate (isolated-vm)
 * inside the Nimbus node process, with a heap limit (the function's `memory`), a per-request
 * CPU watchdog and termination. Fetch-style functions only. Why in-process and what that means
 * for isolation: docs/isolate.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ivm from 'isolated-vm';
import { NimbusError } from '../../core/errors.js';
import { packageRoot } from '../../core/package-root.js';
import type { InstanceStats } from '../sandbox/cgroups.js';
import type { ExitInfo, InstanceSpec, InstanceState, Runtime, RuntimeEvent } from '../types.js';
import { exitThroughProcessExit } from './exit-guard.js';
import { createIsolateInstance, type Entry, readChunk } from './isolate-instance.js';
import { keepAlive } from './keep-alive.js';
import { createOutboundGuard, type OutboundGuardOptions } from './outbound-guard.js';
import { createShellPool } from './shells.js';

/** Options of the isolate provider. */
export interface IsolateRuntimeOptions {
  /** The built prelude (web surface). Default: dist/isolate/prelude.js in the package. */
  preludePath?: string;
  /** Bake the prelude into a V8 startup snapshot shared by all isolates. Default true. */
  snapshot?: boolean;
  /** Spare isolates made ahead per memory size in use (src/runtime/isolate/shells.ts). Default 2; 0: none. */
  spares?: number;
  /** Largest request or outbound-fetch response body, bytes. Default 32 MiB. */
  bodyLimit?: number;
  /** Where isolates' fetch may go beyond the public network (outbound-guard.ts): the node's data plane. */
  outbound?: OutboundGuardOptions;
  /** Watch window after a timeout: an isolate busy for most of two windows in a row is terminated. Default 100 ms. */
  spinCheckMs?: number;
}

/** The isolate provider, with what it knows beyond the Runtime contract. */
export interface IsolateRuntime extends Runtime {
  /** CPU time of the isolate's JavaScript and its V8 heap (no processes: pids is 0). */
  stats(id: string): InstanceStats | undefined;
  /** Ends an instance at once as failed (its isolate disposed), as a crash would. */
  terminate(id: string, reason: string): void;
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_GRACE_MS = 2000;
const DEFAULT_BODY_LIMIT = 32 * 1024 * 1024;

export function createIsolateRuntime(options: IsolateRuntimeOptions = {}): IsolateRuntime {
  exitThroughProcessExit();
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const shells = createShellPool({
    preludePath: options.preludePath ?? join(packageRoot(), 'dist', 'isolate', 'prelude.js'),
    snapshot: options.snapshot !== false,
    spares: options.spares ?? 2,
    bodyLimit,
  });
  const outbound = createOutboundGuard(options.outbound);
  const entries = new Map<string, Entry>();
  const listeners = new Set<(event: RuntimeEvent) => void>();
  const emit = (event: RuntimeEvent) => {
    for (const l of listeners) l(event);
  };
  const setState = (entry: Entry, state: InstanceState, exit?: ExitInfo) => {
    entry.state = state;
    emit({ type: 'state', id: entry.spec.id, state, ...(exit ? { exit } : {}) });
  };

  /** Ends an instance: disposes its isolate, fails whatever it was serving, reports the state. */
  function end(entry: Entry, state: 'stopped' | 'failed', reason: string, failure?: NimbusError) {
    if (entry.ended) return;
    entry.ended = true;
    entries.delete(entry.spec.id);
    entry.bridge.close();
    const err =
      failure ??
      new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${entry.spec.id} ${reason} while serving the request`);
    for (const fail of entry.inflight.values()) fail(err);
    entry.inflight.clear();
    try {
      if (!entry.isolate.isDisposed) entry.isolate.dispose();
    } catch {
      // Already going: the memory limit disposes an isolate by itself.
    }
    setState(entry, state, { code: null, signal: null, reason, expected: state === 'stopped' });
    for (const resolve of entry.drained.splice(0)) resolve();
  }

  async function launch(spec: InstanceSpec, signal?: AbortSignal): Promise<Entry> {
    let code: string;
    try {
      code = readFileSync(join(spec.artifactDir, spec.entry ?? 'index.mjs'), 'utf8');
    } catch (err) {
      throw new NimbusError(
        'NIMBUS_ERR_START_FAILED',
        `Instance ${spec.id} failed to start: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const shell = shells.take(spec.memoryMb);
    const { isolate, context } = shell;
    const entry: Entry = {
      spec,
      state: 'starting',
      isolate,
      context,
      bridge: shell.bridge,
      dispatch: shell.dispatch,
      abort: shell.abort,
      pull: shell.pull,
      cancel: shell.cancel,
      readers: new Map(),
      settled: shell.settled,
      inflight: new Map(),
      drained: [],
      ended: false,
      stopRequested: false,
      memoryBytes: 0,
      memoryPeakBytes: 0,
      heapReading: false,
    } as unknown as Entry;
    Object.assign(shell.target, {
      log: (stream: 'stdout' | 'stderr', line: string, requestId?: string) =>
        emit({ type: 'log', id: spec.id, stream, line, ...(requestId ? { requestId } : {}), time: Date.now() }),
      fire: (id: number) => {
        keepAlive(shell.fire.apply(undefined, [id], { timeout: spec.timeoutMs })).catch((err) => failed(entry, err));
      },
      egress: spec.network !== 'none',
      fetchTimeoutMs: spec.timeoutMs,
      dispatcher: outbound.dispatcher,
      read: (key: string) => readChunk(entry, key, bodyLimit),
    });
    shell.configure.applySync(undefined, [new ivm.ExternalCopy(spec.env).copyInto()]);
    entry.instance = createIsolateInstance(entry, {
      bodyLimit,
      failed,
      end,
      spinCheckMs: options.spinCheckMs ?? 100,
    });
    entries.set(spec.id, entry);
    setState(entry, 'starting');

    const timeoutMs = spec.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const onAbort = () => end(entry, 'stopped', 'stopped while starting');
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // Compiling cannot loop, so it runs on this thread (an async call costs a thread hop);
      // evaluating runs user code, so it goes to isolated-vm's threads, bounded by the timeout.
      const module = isolate.compileModuleSync(code, {
        filename: pathToFileURL(join(spec.artifactDir, spec.entry ?? 'index.mjs')).href,
      });
      module.instantiateSync(context, (specifier) => {
        throw new Error(`import ${JSON.stringify(specifier)}: isolates load one bundled module (deploy bundles it)`);
      });
      await keepAlive(module.evaluate({ timeout: timeoutMs }));
      shell.load.applySync(undefined, [module.namespace.derefInto()]);
    } catch (err) {
      const why = entry.ended
        ? 'it was stopped while starting'
        : isolate.isDisposed || /disposed/.test(String(err))
          ? `its init ran out of memory (${spec.memoryMb} MB) or time (${timeoutMs} ms)`
          : /timed out/i.test(String(err))
            ? `its init did not finish within ${timeoutMs} ms`
            : (err as Error).message;
      end(entry, 'failed', `failed to start: ${why}`);
      entries.delete(spec.id);
      throw new NimbusError('NIMBUS_ERR_START_FAILED', `Instance ${spec.id} failed to start: ${why}`, { cause: err });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (entry.ended)
      throw new NimbusError(
        'NIMBUS_ERR_START_FAILED',
        `Instance ${spec.id} failed to start: it was stopped while starting`,
      );
    setState(entry, 'ready');
    return entry;
  }

  /** An error out of the isolate: the memory limit or a termination ends the instance. */
  function failed(entry: Entry, err: unknown): NimbusError {
    const message = String((err as Error)?.message ?? err);
    if (entry.ended)
      return (
        entry.endError ??
        new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${entry.spec.id} is gone`, { cause: err })
      );
    if (/memory limit/.test(message) || entry.isolate.isDisposed) {
      const oom = new NimbusError(
        'NIMBUS_ERR_OUT_OF_MEMORY',
        `Instance ${entry.spec.id} ran out of memory (${entry.spec.memoryMb} MB) while serving the request`,
        { cause: err },
      );
      entry.endError = oom;
      end(
        entry,
        'failed',
        `ran out of memory: the isolate heap reached its ${entry.spec.memoryMb} MB limit (NIMBUS_ERR_OUT_OF_MEMORY)`,
        oom,
      );
      return oom;
    }
    return new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${entry.spec.id} failed: ${message}`, {
      cause: err,
    });
  }

  async function stop(id: string, stopOptions: { graceMs?: number } = {}): Promise<void> {
    const entry = entries.get(id);
    if (!entry) return;
    // Nothing to drain while the module is still loading: disposing ends its evaluation.
    if (entry.state === 'starting') return end(entry, 'stopped', 'stopped while starting');
    entry.stopping ??= (async () => {
      entry.stopRequested = true;
      if (entry.state === 'ready') setState(entry, 'stopping');
      const grace = stopOptions.graceMs ?? DEFAULT_GRACE_MS;
      let timer: NodeJS.Timeout | undefined;
      const drained = (async () => {
        if (entry.inflight.size > 0) await new Promise<void>((resolve) => entry.drained.push(resolve));
        // ctx.waitUntil work gets the rest of the grace period.
        if (!entry.ended)
          await keepAlive(entry.settled.apply(undefined, [], { result: { promise: true } })).catch(() => {});
      })();
      await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, grace)))]);
      clearTimeout(timer);
      end(entry, 'stopped', 'stopped');
    })();
    return entry.stopping;
  }

  return {
    name: 'isolate',
    async start(spec, startOptions = {}) {
      if (spec.kind !== 'isolate')
        throw new NimbusError('NIMBUS_ERR_START_FAILED', `The isolate runtime cannot run ${spec.kind} instances`);
      if (startOptions.signal?.aborted)
        throw new NimbusError('NIMBUS_ERR_START_FAILED', 'The start was aborted', {
          cause: startOptions.signal.reason,
        });
      const entry = await launch(spec, startOptions.signal);
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
      if (!entry || entry.isolate.isDisposed) return undefined;
      // Never getHeapStatisticsSync: it waits for the isolate's lock, and a function in a busy
      // loop holds it until the watchdog on this very thread ends it (a deadlock). The async
      // reading queues behind the running code instead; this sample shows the previous one.
      if (!entry.heapReading) {
        entry.heapReading = true;
        entry.isolate
          .getHeapStatistics()
          .then((heap) => {
            entry.memoryBytes = heap.used_heap_size + heap.externally_allocated_size;
            entry.memoryPeakBytes = Math.max(entry.memoryPeakBytes, entry.memoryBytes);
          })
          .catch(() => {})
          .finally(() => {
            entry.heapReading = false;
          });
      }
      return {
        cpuMs: Number(entry.isolate.cpuTime) / 1e6,
        memoryBytes: entry.memoryBytes,
        memoryPeakBytes: entry.memoryPeakBytes,
        pids: 0,
      };
    },
    terminate(id, reason) {
      const entry = entries.get(id);
      if (entry) end(entry, 'failed', reason);
    },
    async close() {
      shells.close();
      await Promise.all([...entries.keys()].map((id) => stop(id, { graceMs: 0 })));
      await outbound.close();
    },
  };
}
