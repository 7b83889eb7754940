/**
 * Isolate shells: a V8 isolate with its context, the prelude (from the startup snapshot) and the
 * host bridge bound, but no function yet. A few spares per memory size are made ahead, when the
 * node is idle, so a cold start only compiles and runs the function's module (the "stem cell"
 * idea of issue 4's warm pools, at isolate scale: a spare costs ≈ 1 MB).
 */
import { readFileSync } from 'node:fs';
import ivm from 'isolated-vm';
import { NimbusError } from '../../core/errors.js';
import { type Bridge, type BridgeOptions, createBridge } from './host-bridge.js';

type Fn = ivm.Reference<(...a: any[]) => any>;

/** An isolate ready for a function: the prelude's entry points and the bridge's mutable target. */
export interface Shell {
  isolate: ivm.Isolate;
  context: ivm.Context;
  dispatch: Fn;
  abort: Fn;
  pull: Fn;
  cancel: Fn;
  settled: Fn;
  fire: Fn;
  load: Fn;
  configure: Fn;
  bridge: Bridge;
  /** What the bridge calls; the taker sets log / fire / egress / fetchTimeoutMs. */
  target: BridgeOptions;
}

/** Options of the shell pool. */
export interface ShellPoolOptions {
  preludePath: string;
  /** Bake the prelude into a startup snapshot. */
  snapshot: boolean;
  /** Spare shells kept per memory size already asked for; 0 makes every shell on demand. */
  spares: number;
  bodyLimit: number;
}

/** Makes shells, keeping spares. `take` is synchronous: a spare if there is one, else a new shell. */
export interface ShellPool {
  take(memoryMb: number): Shell;
  /** Disposes the spares; later takes still work (no spares are made after close). */
  close(): void;
}

/** isolated-vm's floor for `memoryLimit`. */
const MIN_MEMORY_MB = 8;
const noop = () => {};
/** One request through a throw-away handler (its load is replaced by the function's own). */
const WARM_UP = `__nimbus.load({ default: async (r, env, ctx) => {
  const u = new URL(r.url); const t = await r.text(); ctx.waitUntil(Promise.resolve());
  return Response.json({ q: u.searchParams.get('b'), h: r.headers.get('x'), t }); } });
__nimbus.dispatch('POST', 'http://warm.up/a?b=1', ['x', 'y'], new ArrayBuffer(1), 'warm-up');`;
/** Quiet time after a take before spares are made again. */
const REFILL_DELAY_MS = 50;

export function createShellPool(options: ShellPoolOptions): ShellPool {
  let prelude: string | undefined;
  let snapshot: ivm.ExternalCopy<ArrayBuffer> | null | undefined;
  const spares = new Map<number, Shell[]>();
  let refilling = false;
  let closed = false;

  /** The prelude, read once; the snapshot, made once (null when V8 refuses: each shell runs the prelude). */
  function source(): string {
    if (prelude === undefined) {
      try {
        prelude = readFileSync(options.preludePath, 'utf8');
      } catch (err) {
        throw new NimbusError(
          'NIMBUS_ERR_START_FAILED',
          `The isolate prelude is missing (${options.preludePath}): run \`npm run build\``,
          { cause: err },
        );
      }
    }
    if (snapshot === undefined) {
      snapshot = null;
      if (options.snapshot) {
        try {
          // No warm-up script: with one (isolated-vm 5.0.4, Node 20's V8) the request path's
          // ArrayBuffer copies came out with a stray leading byte. docs/isolate.md.
          snapshot = ivm.Isolate.createSnapshot([{ code: prelude, filename: 'nimbus:prelude' }]);
        } catch {
          snapshot = null;
        }
      }
    }
    return prelude;
  }

  function make(memoryMb: number, warm = false): Shell {
    const code = source();
    const isolate = new ivm.Isolate({
      memoryLimit: Math.max(MIN_MEMORY_MB, memoryMb),
      ...(snapshot ? { snapshot } : {}),
      onCatastrophicError: (message) => {
        // V8 itself is in trouble (the process is at risk): say so loudly, nothing else to do.
        console.error(`nimbus: an isolate hit a catastrophic V8 error: ${message}`);
      },
    });
    const context = isolate.createContextSync();
    if (!snapshot) context.evalSync(code, { filename: 'nimbus:prelude' });
    const nimbus = context.global.getSync('__nimbus', { reference: true }) as ivm.Reference<Record<string, unknown>>;
    const fn = (name: string) => nimbus.getSync(name, { reference: true }) as Fn;
    const target: BridgeOptions = {
      log: noop,
      fire: noop,
      egress: false,
      bodyLimit: options.bodyLimit,
      fetchTimeoutMs: 30_000,
      read: async () => null,
    };
    const bridge = createBridge(target);
    fn('bind').applySync(undefined, bridge.args);
    const shell: Shell = {
      isolate,
      context,
      dispatch: fn('dispatch'),
      abort: fn('abort'),
      pull: fn('pull'),
      cancel: fn('cancel'),
      settled: fn('settled'),
      fire: fn('fire'),
      load: fn('load'),
      configure: fn('configure'),
      bridge,
      target,
    };
    // A spare has time to spare: one request through a throw-away handler compiles the request
    // path now (V8 compiles snapshot functions lazily), not in the first real request.
    if (warm) context.evalSync(WARM_UP);
    // The function sees no door to the host but the prelude's globals.
    context.evalSync('delete globalThis.__nimbus');
    return shell;
  }

  /**
   * Tops spares up, one shell per turn of the event loop, starting a moment after a take: making
   * one holds this thread ≈ 2-4 ms, which must not land inside the cold start that just took one.
   */
  function refill() {
    if (refilling || closed || options.spares <= 0) return;
    refilling = true;
    setTimeout(function step() {
      const short = [...spares].find(([, list]) => list.length < options.spares);
      if (!short || closed) {
        refilling = false;
        return;
      }
      try {
        short[1].push(make(short[0], true));
      } catch {
        refilling = false; // out of memory or similar: the next take makes one on demand
        return;
      }
      setImmediate(step);
    }, REFILL_DELAY_MS).unref();
  }

  return {
    take(memoryMb) {
      const size = Math.max(MIN_MEMORY_MB, memoryMb);
      const list = spares.get(size) ?? [];
      spares.set(size, list);
      const shell = list.pop() ?? make(size);
      refill();
      return shell;
    },
    close() {
      closed = true;
      for (const list of spares.values()) for (const shell of list.splice(0)) shell.isolate.dispose();
    },
  };
}
