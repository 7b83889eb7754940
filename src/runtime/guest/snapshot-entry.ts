/**
 * The snapshot guest (docs/snapshots.md). The host's snapshot builder bundles it (CommonJS, one
 * file) with the function's module into the entry of `node --build-snapshot`:
 *
 *   require('…/snapshot.cjs').prepareSnapshot(() => require('…/index.mjs'))
 *
 * At build time it runs the module's init, then its `beforeSnapshot` export, and waits for the
 * event loop to drain (Node takes the snapshot then). In every instance started from the blob the
 * deserialize main function (restore.ts) makes the instance unique again, runs `afterRestore` and
 * serves like function.ts. node:http and node:net are loaded only at restore: a snapshot that holds
 * them cannot be built (Node 20 aborts, measured), so restore.ts is imported lazily.
 */
import { startupSnapshot } from 'node:v8';
import { hookOf } from './hooks.js';

type Module = Record<string, unknown>;

/** Exit code of a build whose init or hook failed (the message is on stderr). */
const INIT_FAILED = 3;
/** Exit code of a build whose init left handles open (timers, servers, sockets). */
const LEFT_OPEN = 4;

function fail(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/**
 * Runs the function's init (`load`) for the snapshot and arranges the restore. `load` throwing, or
 * `beforeSnapshot` failing, ends the build with exit code 3; handles still open after
 * NIMBUS_SNAPSHOT_SETTLE_MS (default 5000) end it with exit code 4 and their names.
 */
export function prepareSnapshot(load: () => Module): void {
  if (!startupSnapshot.isBuildingSnapshot())
    fail(INIT_FAILED, 'The snapshot entry runs only under node --build-snapshot');
  let mod: Module;
  try {
    mod = load();
  } catch (err) {
    fail(INIT_FAILED, `The module threw at init: ${describe(err)}`);
  }
  const settleMs = Number(process.env.NIMBUS_SNAPSHOT_SETTLE_MS ?? 5000);
  // After the init's own microtasks: run the hook (it may be async), then give the loop time to
  // drain. An unref'd timer keeps nothing alive; it only speaks when something else does.
  setImmediate(async () => {
    const before = hookOf(mod, 'beforeSnapshot');
    if (before) {
      try {
        await before();
      } catch (err) {
        fail(INIT_FAILED, `beforeSnapshot threw: ${describe(err)}`);
      }
    }
    const watchdog = setTimeout(() => {
      const open = process.getActiveResourcesInfo().filter((name) => name !== 'TTYWrap');
      fail(
        LEFT_OPEN,
        `The function's init left handles open, so no snapshot can be taken: ${summarise(open)}. ` +
          'Close timers, servers and connections before the snapshot (export a beforeSnapshot hook), ' +
          'or open them in afterRestore.',
      );
    }, settleMs);
    watchdog.unref();
    startupSnapshot.addSerializeCallback(() => clearTimeout(watchdog));
  });
  startupSnapshot.setDeserializeMainFunction(() => {
    void import('./restore.js').then(({ restore }) => restore(mod));
  });
}

/** ['Timeout', 'Timeout', 'TCPServerWrap'] → "Timeout ×2, TCPServerWrap". */
function summarise(names: string[]): string {
  if (names.length === 0) return 'pending work that never settles';
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name)).join(', ');
}
