/**
 * The warm pool of the process provider: cells ("stem cells", as Fission and OpenWhisk call them)
 * are guests started — sandboxed like any instance, in their own cgroup — before any function is
 * known (guest/cell.ts). A cold start takes a warm cell and specialises it (specialise.ts) instead
 * of spawning, so it skips the process spawn, the sandbox setup and Node's boot.
 *
 * A cell is used once: taken out of the pool for good, never returned. What cannot change after
 * spawn — V8's heap limit, the network namespace — makes a cell's shape; cells are kept per shape:
 * the configured shapes, plus shapes asked for since (the few most recent). Refills run in the
 * background, one spawn at a time, and stop while the host is short of memory or while cells of a
 * shape keep failing to warm (a broken runtime must not become a crash loop).
 */
import { freemem } from 'node:os';
import type { CellShape, Launched, Launcher } from './launch.js';
import { killGroup } from './launch.js';
import { waitReady } from './spawn.js';

/** Settings of the pool. */
export interface CellPoolOptions {
  /** Warm cells kept per shape; 0 disables the pool. */
  size: number;
  /** Shapes kept warm from the start (and never dropped). */
  shapes: CellShape[];
  /** Shapes asked for besides those, kept warm while among the most recent. Default 3. */
  extraShapes?: number;
  /** Free host memory, bytes. Default os.freemem() (MemAvailable). */
  freeMemory?: () => number;
  /** Memory left free by refills beyond the cell's own limit, bytes. Default 512 MiB. */
  reserveBytes?: number;
  /** How long a cell may take to warm. Default 10 s. */
  warmTimeoutMs?: number;
  /** Called once per reason when refills stop (cells keep failing to warm). */
  warn?: (message: string) => void;
  /** Epoch ms (injected in tests). Default Date.now. */
  now?: () => number;
}

/** A cell as the pool reports it. */
export interface CellInfo {
  shape: CellShape;
  pid?: number;
  state: 'warming' | 'warm';
  /** Its cgroup's memory charge, bytes, when sandboxed. */
  memoryBytes?: number;
}

export interface CellPool {
  /**
   * Takes a warm cell of `shape` out of the pool for good, or returns undefined (none warm, or a
   * shape not kept: it is kept from now on). Call `refill` once the cold start it served is done.
   */
  take(shape: CellShape): Launched | undefined;
  /**
   * Starts the background refill (no-op when full), after `delayMs` when given: a spawn blocks the
   * event loop for a moment, so after a cold start it waits until the first request is served.
   */
  refill(delayMs?: number): void;
  info(): CellInfo[];
  /** Kills every cell not taken and waits until they are cleaned up. */
  close(): Promise<void>;
}

interface Cell {
  launched: Launched;
  shape: CellShape;
  key: string;
  warm: boolean;
}

/** Consecutive failed warm-ups of a shape after which its refills stop… */
const MAX_FAILURES = 3;
/** …until this long after the last failure (a full disk or a broken install may be fixed). */
const RETRY_AFTER_MS = 5 * 60_000;
const DEFAULT_RESERVE = 512 * 1024 * 1024;

export const shapeKey = (shape: CellShape) => `${shape.network}:${shape.memoryMb}`;

/** Whether a cell's process and pipes keep the host's event loop alive. */
function setRef(launched: Launched, ref: boolean): void {
  const { child } = launched;
  if (ref) child.ref();
  else child.unref();
  for (const stream of child.stdio) {
    const handle = stream as unknown as { ref?: () => void; unref?: () => void } | null;
    if (ref) handle?.ref?.();
    else handle?.unref?.();
  }
}

export function createCellPool(launcher: Launcher, options: CellPoolOptions): CellPool {
  const freeMemory = options.freeMemory ?? freemem;
  const reserve = options.reserveBytes ?? DEFAULT_RESERVE;
  const extraShapes = options.extraShapes ?? 3;
  const pinned = new Map(options.shapes.map((s) => [shapeKey(s), s]));
  /** Shapes asked for beyond the pinned ones, least recent first. */
  const recent = new Map<string, CellShape>();
  const cells = new Set<Cell>();
  const failures = new Map<string, { count: number; at: number }>();
  const now = options.now ?? Date.now;
  const cleanups = new Set<Promise<void>>();
  let spawning = false;
  let closed = false;
  let delayed: NodeJS.Timeout | undefined;
  let names = 0;

  const kept = () => [...pinned.values(), ...recent.values()];
  const count = (key: string) => [...cells].filter((c) => c.key === key).length;

  const discard = (cell: Cell) => {
    cells.delete(cell);
    // Ref'd again: whoever awaits the cleanup (close) must see the exit.
    setRef(cell.launched, true);
    killGroup(cell.launched.child.pid, 'SIGKILL');
    const done = cell.launched.exited.then(() => cell.launched.cleanup());
    cleanups.add(done);
    void done.then(() => cleanups.delete(done));
  };

  /** The next shape short of cells, when refills may spawn. */
  const wanted = (): CellShape | undefined => {
    if (closed || spawning || options.size <= 0) return undefined;
    for (const shape of kept()) {
      const key = shapeKey(shape);
      const failed = failures.get(key);
      if (failed && failed.count >= MAX_FAILURES && now() - failed.at > RETRY_AFTER_MS) failures.delete(key);
      if ((failures.get(key)?.count ?? 0) >= MAX_FAILURES || count(key) >= options.size) continue;
      if (freeMemory() < shape.memoryMb * 1024 * 1024 + reserve) return undefined;
      return shape;
    }
    return undefined;
  };

  function refill(): void {
    const shape = wanted();
    if (!shape) return;
    const key = shapeKey(shape);
    let launched: Launched;
    try {
      launched = launcher.cell(shape, `cell-${++names}`);
    } catch (err) {
      fail(key, (err as Error).message);
      return;
    }
    const cell: Cell = { launched, shape, key, warm: false };
    cells.add(cell);
    // An idle cell must not keep the host process alive (a runtime never closed); if the host
    // exits, the cell's stdin closes and it exits on its own. Taken, it is ref'd again.
    setRef(launched, false);
    spawning = true;
    // A warm cell that dies in the pool is replaced (one still warming is the wait's business
    // below, one taken its instance's).
    void launched.exited.then(() => {
      if (!cell.warm || !cells.has(cell)) return;
      discard(cell);
      fail(key, 'a warm cell exited');
      refill();
    });
    waitReady(launched.child, { timeoutMs: options.warmTimeoutMs ?? 10_000, tail: () => launched.tail }).then(
      () => {
        spawning = false;
        if (!cells.has(cell)) return refill();
        cell.warm = true;
        failures.delete(key);
        try {
          launched.settle?.();
        } catch {}
        refill();
      },
      (err: Error) => {
        spawning = false;
        // Not counted when the pool itself dropped the cell (closing, its shape evicted).
        if (cells.has(cell)) {
          discard(cell);
          fail(key, err.message);
        }
        refill();
      },
    );
  }

  function fail(key: string, message: string): void {
    const n = (failures.get(key)?.count ?? 0) + 1;
    failures.set(key, { count: n, at: now() });
    if (n === MAX_FAILURES)
      options.warn?.(`warm pool: cells of shape ${key} failed to start ${n} times, no more are started: ${message}`);
  }

  return {
    take(shape) {
      const key = shapeKey(shape);
      if (!pinned.has(key)) {
        // Most recent last; beyond the limit the least recent shape goes, with its cells.
        recent.delete(key);
        recent.set(key, shape);
        if (recent.size > extraShapes) {
          const [oldest] = recent.keys();
          recent.delete(oldest!);
          for (const cell of cells) if (cell.key === oldest) discard(cell);
        }
      }
      for (const cell of cells) {
        if (cell.key !== key || !cell.warm || cell.launched.child.exitCode !== null) continue;
        cells.delete(cell);
        setRef(cell.launched, true);
        return cell.launched;
      }
      return undefined;
    },
    refill(delayMs) {
      if (!delayMs) return refill();
      if (delayed || closed) return;
      delayed = setTimeout(() => {
        delayed = undefined;
        refill();
      }, delayMs);
    },
    info: () =>
      [...cells].map((c) => ({
        shape: c.shape,
        pid: c.launched.child.pid,
        state: c.warm ? 'warm' : 'warming',
        memoryBytes: c.launched.cgroup?.stats().memoryBytes,
      })),
    async close() {
      closed = true;
      clearTimeout(delayed);
      for (const cell of [...cells]) discard(cell);
      await Promise.all(cleanups);
    },
  };
}
