import type { InstanceSpec, Runtime } from '../types.js';

/**
 * A Runtime around another that tells `onInit` how long each started instance's init took, when
 * the instance knows it (`Instance.initMs`: process instances read it from the guest's readiness
 * line). Automatic snapshots (docs/snapshots.md, `snapshot: auto`) decide from it. `onInit` must
 * not throw; it is called after the start resolved, before the instance is handed out.
 */
export function withInitReports<R extends Runtime>(inner: R, onInit: (spec: InstanceSpec, initMs: number) => void): R {
  return {
    ...inner,
    async start(spec: InstanceSpec, options?: { signal?: AbortSignal }) {
      const instance = await inner.start(spec, options);
      if (typeof instance.initMs === 'number') {
        try {
          onInit(spec, instance.initMs);
        } catch {
          // A report is advice; it never fails a start.
        }
      }
      return instance;
    },
  };
}
