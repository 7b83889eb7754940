import type { InstanceSpec, Runtime, RuntimeEvent } from '../types.js';

/**
 * What Node prints, or how it exits, when it cannot use a blob at all: built by another V8 or with
 * other flags ("Failed to load the startup snapshot", exit code 14), unreadable ("Cannot open"),
 * or damaged (an assertion in SnapshotData::FromBlob).
 */
const LOAD_FAILED =
  /Failed to load the startup snapshot|SnapshotData::FromBlob|Cannot open \S+\.blob|exited with code 14 /;

/** True when a start failed because Node could not load the snapshot blob (not because of the function). */
export function isSnapshotLoadFailure(spec: InstanceSpec, err: unknown): boolean {
  return spec.snapshotBlob !== undefined && err instanceof Error && LOAD_FAILED.test(err.message);
}

/**
 * A Runtime around another that starts an instance the normal way when Node refuses its snapshot
 * blob (the resolver only plans blobs made by this node's Node version, so this is a safety net,
 * not a path), with a `system` log line saying why. A restored instance that fails for the
 * function's own reasons (`afterRestore` threw) is reported as it is.
 */
export function withSnapshotFallback<R extends Runtime>(inner: R): R {
  const listeners = new Set<(event: RuntimeEvent) => void>();
  return {
    ...inner,
    subscribe(listener: (event: RuntimeEvent) => void) {
      listeners.add(listener);
      const off = inner.subscribe(listener);
      return () => {
        listeners.delete(listener);
        off();
      };
    },
    async start(spec: InstanceSpec, options?: { signal?: AbortSignal }) {
      try {
        return await inner.start(spec, options);
      } catch (err) {
        if (!isSnapshotLoadFailure(spec, err) || options?.signal?.aborted) throw err;
        const why = (err as Error).message.split('\n').find((line) => LOAD_FAILED.test(line)) ?? '';
        const line = `The snapshot could not be restored (${why.trim()}); starting normally`;
        for (const listener of listeners)
          listener({ type: 'log', id: spec.id, stream: 'system', line, time: Date.now() });
        const { snapshotBlob: _, ...plain } = spec;
        return inner.start(plain, options);
      }
    },
  };
}
