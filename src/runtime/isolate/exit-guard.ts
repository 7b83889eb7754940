/**
 * isolated-vm aborts the whole process when one of its handles is garbage-collected during Node's
 * own teardown, after its environment is gone (`IsolateEnvironment::GetCurrent(): Assertion
 * environment != nullptr`, from a weak callback in the final GC of `~NodeMainInstance`; 1 run in 8
 * of a short test file, and a `nimbus serve` stopped by SIGTERM would exit 134 instead of 0).
 * A process that made isolates therefore leaves through `process.exit` (which skips that teardown)
 * once its event loop is done and every other exit listener registered by then has run.
 */
let guarded = false;

export function exitThroughProcessExit(): void {
  if (guarded) return;
  guarded = true;
  process.once('beforeExit', () => {
    // In an 'exit' listener, process.exit goes straight to the C exit with the same code.
    process.once('exit', (code) => process.exit(code));
  });
}
