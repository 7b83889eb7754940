/**
 * Loads the function's module and serves it, configured by the NIMBUS_* variables of the
 * environment as it is now: function.ts runs it at once, a pool cell (cell.ts) once it has been
 * given its function's environment. Imports only node builtins and other guest files.
 */
import { pathToFileURL } from 'node:url';
import { type LoadedFunction, loadFunction } from './handler.js';
import { installLightResponse } from './light-response.js';
import { installConsole } from './logging.js';
import { ENV_KEYS_VAR } from './protocol.js';
import { failStart, serve } from './serve.js';

function functionEnv(): Record<string, string> {
  const keys: string[] = JSON.parse(process.env[ENV_KEYS_VAR] ?? '[]');
  const env: Record<string, string> = {};
  for (const key of keys) env[key] = process.env[key] ?? '';
  return env;
}

/** Imports NIMBUS_MODULE, picks its handler and serves it on NIMBUS_SOCKET; a failure ends the process. */
export async function runFunction(): Promise<void> {
  const {
    NIMBUS_MODULE: modulePath,
    NIMBUS_SOCKET: socketPath,
    NIMBUS_FUNCTION = 'function',
    NIMBUS_REVISION = 'r0',
    NIMBUS_INSTANCE = 'local',
    NIMBUS_MEMORY_MB = '256',
    NIMBUS_TIMEOUT_MS = '30000',
  } = process.env;
  if (!modulePath || !socketPath) failStart('NIMBUS_MODULE and NIMBUS_SOCKET must be set');
  installConsole();
  installLightResponse();
  let mod: Record<string, unknown>;
  // The init that an automatic snapshot would save (docs/snapshots.md): import + top-level code.
  const initStarted = performance.now();
  try {
    mod = await import(pathToFileURL(modulePath).href);
  } catch (err) {
    const e = err as Error;
    failStart(`The module threw at init: ${e?.stack ?? String(err)}`);
  }
  let fn: LoadedFunction;
  try {
    fn = loadFunction(mod, functionEnv(), {
      functionName: NIMBUS_FUNCTION,
      functionVersion: NIMBUS_REVISION,
      instance: NIMBUS_INSTANCE,
      memoryMb: Number(NIMBUS_MEMORY_MB),
      timeoutMs: Number(NIMBUS_TIMEOUT_MS),
    });
  } catch (err) {
    failStart((err as Error).message);
  }
  const initMs = Math.round(performance.now() - initStarted);
  serve({ socketPath, handle: fn.handle, beforeExit: fn.settled, initMs });
}
