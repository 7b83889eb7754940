/** Shared by the instance manager's tests. */
import type { RevisionPlan } from './types.js';

/** Lets the pool's promise chains run (starts, leases). */
export const settle = () => new Promise((r) => setImmediate(r));

/** A revision plan for the pool tests: concurrency 1, up to 10 instances, 1 s timeout. */
export function plan(overrides: Partial<RevisionPlan['scale']> & { concurrency?: number } = {}): RevisionPlan {
  const { concurrency = 1, ...scale } = overrides;
  return {
    key: 'fn/r1',
    function: 'fn',
    revision: 'r1',
    concurrency,
    scale: { min: 0, max: 10, idleTimeout: 60, ...scale },
    spec: {
      function: 'fn',
      revision: 'r1',
      kind: 'node',
      artifactDir: '/nowhere',
      env: {},
      memoryMb: 128,
      timeoutMs: 1000,
    },
  };
}
