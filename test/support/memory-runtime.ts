import { NimbusError } from '../../src/core/errors.js';
import type {
  ExitInfo,
  Instance,
  InstanceSpec,
  InstanceState,
  Runtime,
  RuntimeEvent,
} from '../../src/runtime/types.js';

/**
 * An in-process Runtime: a complete implementation of the contract whose instances answer with a
 * JS handler. Used to test the instance manager's logic without process start-up noise. Starts
 * wait for `startGate` when given, so tests decide when instances become ready.
 */
export function createMemoryRuntime(
  options: {
    handler?: (request: Request, spec: InstanceSpec) => Response | Promise<Response>;
    startGate?: (spec: InstanceSpec) => Promise<void>;
  } = {},
) {
  const live = new Map<string, Instance & { state: InstanceState; frozen: boolean }>();
  const listeners = new Set<(e: RuntimeEvent) => void>();
  const emit = (e: RuntimeEvent) => {
    for (const l of listeners) l(e);
  };
  const handler = options.handler ?? (() => new Response('ok'));
  let started = 0;

  const runtime: Runtime & { started: () => number; crash(id: string): void } = {
    name: 'memory',
    started: () => started,
    async start(spec) {
      started++;
      emit({ type: 'state', id: spec.id, state: 'starting' });
      try {
        await options.startGate?.(spec);
      } catch (err) {
        emit({
          type: 'state',
          id: spec.id,
          state: 'failed',
          exit: { code: 1, signal: null, reason: 'failed to start', expected: false },
        });
        throw new NimbusError('NIMBUS_ERR_START_FAILED', (err as Error).message);
      }
      const instance = {
        id: spec.id,
        spec,
        state: 'ready' as InstanceState,
        frozen: false,
        fetch: async (request: Request) => {
          if (instance.state !== 'ready') throw new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', 'instance is gone');
          if (instance.frozen) throw new Error('fetch sent to a frozen instance');
          return handler(request, spec);
        },
      };
      live.set(spec.id, instance);
      emit({ type: 'state', id: spec.id, state: 'ready' });
      return instance;
    },
    async stop(id) {
      const inst = live.get(id);
      if (!inst) return;
      live.delete(id);
      inst.state = 'stopped';
      emit({ type: 'state', id, state: 'stopped', exit: { code: 0, signal: null, reason: 'stopped', expected: true } });
    },
    async freeze(id) {
      const inst = live.get(id);
      if (!inst) return false;
      inst.frozen = true;
      return true;
    },
    async thaw(id) {
      const inst = live.get(id);
      if (!inst) return false;
      inst.frozen = false;
      return true;
    },
    crash(id) {
      const inst = live.get(id);
      if (!inst) return;
      live.delete(id);
      inst.state = 'failed';
      const exit: ExitInfo = { code: null, signal: 'SIGKILL', reason: 'killed by SIGKILL', expected: false };
      emit({ type: 'state', id, state: 'failed', exit });
    },
    list: () => [...live.values()],
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      await Promise.all([...live.keys()].map((id) => runtime.stop(id)));
    },
  };
  return runtime;
}
