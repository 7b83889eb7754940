/**
 * The function framework: runs inside an instance, loads the function's bundled ESM module and
 * serves it on a Unix socket (the framed channel, or HTTP/1.1). Started by the process provider
 * with NIMBUS_* variables (see runtime/process/spawn.ts); the work is in run-function.ts, shared
 * with the pool cell (cell.ts).
 */
import { runFunction } from './run-function.js';

void runFunction();
