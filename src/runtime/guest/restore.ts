/**
 * The deserialize main function of a snapshot (snapshot-entry.ts): runs in every instance restored
 * from the blob. Node already gives it a fresh process.env, clocks (Date.now, performance.now and
 * timeOrigin) and Math.random seed; what it does not refresh is made fresh here before the
 * function's `afterRestore` hook runs and the instance reports ready.
 */
import { loadFunction } from './handler.js';
import { hookOf } from './hooks.js';
import { installConsole } from './logging.js';
import { ENV_KEYS_VAR } from './protocol.js';
import { failStart, serve } from './serve.js';

type Module = Record<string, unknown>;

/** Ids per refill of crypto.randomUUID's entropy cache (lib/internal/crypto/random.js, kBatchSize). */
const UUID_BATCH = 128;

/**
 * crypto.randomUUID() serves ids from a cache of random bytes filled 128 ids at a time; a cache
 * filled at build time lives in the blob, so every restored instance would hand out the same ids.
 * Taking 128 ids crosses exactly one refill, after which the cache holds this process's entropy.
 * Only when crypto was loaded at build time: loading it just for this costs ≈ 15 ms.
 */
export function refreshEntropy(): void {
  const loaded = (process as unknown as { moduleLoadList?: string[] }).moduleLoadList ?? [];
  if (!loaded.includes('NativeModule internal/crypto/random')) return;
  const { randomUUID } = require('node:crypto') as typeof import('node:crypto');
  for (let i = 0; i < UUID_BATCH; i++) randomUUID();
}

/** The function's own variables, read from this process's environment (not the build's). */
function functionEnv(): Record<string, string> {
  const keys: string[] = JSON.parse(process.env[ENV_KEYS_VAR] ?? '[]');
  const env: Record<string, string> = {};
  for (const key of keys) env[key] = process.env[key] ?? '';
  return env;
}

/** Makes the restored instance unique, runs `afterRestore`, then serves the module. */
export async function restore(mod: Module): Promise<void> {
  const env = process.env;
  const socketPath = env.NIMBUS_SOCKET;
  if (!socketPath) failStart('NIMBUS_SOCKET must be set');
  installConsole();
  refreshEntropy();
  const after = hookOf(mod, 'afterRestore');
  if (after) {
    try {
      await after();
    } catch (err) {
      failStart(`afterRestore threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  let handle: ReturnType<typeof loadFunction>;
  try {
    handle = loadFunction(mod, functionEnv(), {
      functionName: env.NIMBUS_FUNCTION ?? 'function',
      functionVersion: env.NIMBUS_REVISION ?? 'r0',
      instance: env.NIMBUS_INSTANCE ?? 'local',
      memoryMb: Number(env.NIMBUS_MEMORY_MB ?? 256),
      timeoutMs: Number(env.NIMBUS_TIMEOUT_MS ?? 30000),
    });
  } catch (err) {
    failStart((err as Error).message);
  }
  serve({ socketPath, handle: handle.handle, beforeExit: handle.settled });
}
