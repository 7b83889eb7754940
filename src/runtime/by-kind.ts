/**
 * A Runtime that sends each instance to the provider for its kind (`runtime: isolate` to the
 * isolate provider, node and app to the process provider) and merges the rest: one list, one
 * event stream, stats / freeze / thaw asked of whichever provider holds the instance.
 */
import type { RuntimeKind } from '../core/types.js';
import type { Runtime } from './types.js';

/** Providers by kind; `process` serves every kind without its own. */
export interface RuntimesByKind {
  process: Runtime;
  isolate?: Runtime;
}

export function createRuntimeByKind(providers: RuntimesByKind): Runtime {
  const all = [...new Set([providers.process, providers.isolate].filter((r): r is Runtime => r !== undefined))];
  const forKind = (kind: RuntimeKind): Runtime => (kind === 'isolate' && providers.isolate) || providers.process;
  /** Which provider holds an instance (from the last list; ids are unique across providers). */
  const holder = (id: string): Runtime | undefined => all.find((r) => r.list().some((i) => i.id === id));
  const owners = new Map<string, Runtime>();
  const ownerOf = (id: string) => owners.get(id) ?? holder(id);
  for (const r of all)
    r.subscribe((e) => {
      if (e.type === 'state' && (e.state === 'stopped' || e.state === 'failed')) owners.delete(e.id);
    });
  return {
    name: all.map((r) => r.name).join('+'),
    async start(spec, options) {
      const provider = forKind(spec.kind);
      owners.set(spec.id, provider);
      try {
        return await provider.start(spec, options);
      } catch (err) {
        owners.delete(spec.id);
        throw err;
      }
    },
    async stop(id, options) {
      const owner = ownerOf(id);
      await Promise.all((owner ? [owner] : all).map((r) => r.stop(id, options)));
    },
    list: () => all.flatMap((r) => r.list()),
    subscribe(listener) {
      const offs = all.map((r) => r.subscribe(listener));
      return () => {
        for (const off of offs) off();
      };
    },
    stats: (id) => ownerOf(id)?.stats?.(id),
    freeze: async (id) => (await ownerOf(id)?.freeze?.(id)) ?? false,
    thaw: async (id) => (await ownerOf(id)?.thaw?.(id)) ?? false,
    async close() {
      await Promise.all(all.map((r) => r.close()));
    },
  };
}
