/**
 * The function framework: runs inside an instance, loads the function's bundled ESM module and
 * serves it on a Unix socket (the framed channel, or HTTP/1.1). Started by the process provider
 * with NIMBUS_* variables (see runtime/process/spawn.ts). Imports only node builtins and other guest files.
 */
import { pathToFileURL } from 'node:url';
import { type LoadedFunction, loadFunction } from './handler.js';
import { installConsole } from './logging.js';
import { ENV_KEYS_VAR } from './protocol.js';
import { failStart, serve } from './serve.js';

const {
  NIMBUS_MODULE: modulePath,
  NIMBUS_SOCKET: socketPath,
  NIMBUS_FUNCTION = 'function',
  NIMBUS_REVISION = 'r0',
  NIMBUS_INSTANCE = 'local',
  NIMBUS_MEMORY_MB = '256',
  NIMBUS_TIMEOUT_MS = '30000',
} = process.env;

function functionEnv(): Record<string, string> {
  const keys: string[] = JSON.parse(process.env[ENV_KEYS_VAR] ?? '[]');
  const env: Record<string, string> = {};
  for (const key of keys) env[key] = process.env[key] ?? '';
  return env;
}

async function main(): Promise<void> {
  if (!modulePath || !socketPath) failStart('NIMBUS_MODULE and NIMBUS_SOCKET must be set');
  installConsole();
  let mod: Record<string, unknown>;
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
  serve({ socketPath, handle: fn.handle, beforeExit: fn.settled });
}

void main();
