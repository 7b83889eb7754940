/**
 * The main thread's side of the log writer thread (log-worker.ts): posts batches and requests,
 * keeps each until the thread says it is done, and starts a new thread when one dies, posting to
 * it what the old one left undone. Nothing here throws into the caller: a failure is a warning
 * line, and records are only ever given up with a warning that counts them.
 */
import { Worker } from 'node:worker_threads';
import { encodeBatch } from './log-batch.js';
import type { LogRecord } from './log-store.js';
import type { WriterData, WriterReply, WriterRequest } from './log-worker.js';

type Request = { t: 'sync' } | { t: 'prune'; now: number } | { t: 'delete'; fn: string } | { t: 'close' };

export interface LogWriterThread {
  /** Hands records to the thread: one message, nothing waits for it. */
  write(records: readonly LogRecord[]): void;
  /**
   * Done once everything posted before it is: resolves to the id of the last record on disk then,
   * or undefined when the thread did not answer within `timeoutMs` (the request stays queued).
   */
  request(request: Request, timeoutMs?: number): Promise<number | undefined>;
  /** Writes everything posted, then ends the thread; gives up (saying what is lost) after `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
}

interface Item {
  msg: WriterRequest;
  records: number;
  /** How many threads died while it was the oldest undone message. */
  tries: number;
  done?: (lastId: number | undefined) => void;
}

/** A message a thread died on twice is given up: it may be what kills it. */
const MAX_TRIES = 2;
/** Records kept for a thread that is down before the oldest are given up (bounds the memory). */
const MAX_UNWRITTEN = 200_000;
const WARN_EVERY_MS = 10_000;

export interface WriterThreadHooks {
  /** Sees each thread as it starts. */
  onStart?: (worker: Worker) => void;
  /** The thread's module; default: log-worker beside this one (`writerEntry`). */
  entry?: URL;
}

export function startLogWriterThread(data: WriterData, hooks: WriterThreadHooks = {}): LogWriterThread {
  const entry = hooks.entry ?? writerEntry();
  const undone = new Map<number, Item>();
  let unwritten = 0;
  let nextId = 1;
  let worker: Worker | undefined;
  let lastError: Error | undefined;
  let crashes = 0;
  let restart: NodeJS.Timeout | undefined;
  let ended = false;
  let closing: Promise<void> | undefined;
  const lost = createLossReport();
  // While any work is undone the process stays alive, whatever state the thread is in (running,
  // dead, being started again): one ref'd idle timer, rather than reasoning about which of the
  // thread and the restart timer holds the event loop at each step (a CI run once saw a query
  // pending with neither).
  let keepAlive: NodeJS.Timeout | undefined;

  function start(): void {
    restart = undefined;
    lastError = undefined;
    let w: Worker;
    try {
      w = new Worker(entry, { workerData: data });
    } catch (e) {
      // Not even made (no memory for a thread, say): as if it had died at once.
      crashed((e as Error).message);
      return;
    }
    worker = w;
    w.on('message', onReply);
    w.on('error', (e) => {
      lastError = e;
    });
    w.on('exit', (code) => onExit(w, code));
    for (const item of undone.values()) w.postMessage(item.msg);
    // The thread keeps the process alive only while it has work: records are not lost to an exit.
    if (undone.size === 0) w.unref();
    hooks.onStart?.(w);
  }

  function post(item: Item): void {
    undone.set(item.msg.id, item);
    unwritten += item.records;
    keepAlive ??= setInterval(() => {}, 1 << 30);
    // Work keeps the process alive until it is done: the thread, or the timer that starts it again.
    if (!worker) {
      restart?.ref();
      return;
    }
    worker.postMessage(item.msg);
    if (undone.size === 1) worker.ref();
  }

  function settle(id: number, lastId: number | undefined): void {
    const item = undone.get(id);
    if (!item) return;
    undone.delete(id);
    unwritten -= item.records;
    item.done?.(lastId);
    if (undone.size > 0) return;
    clearInterval(keepAlive);
    keepAlive = undefined;
    worker?.unref();
    restart?.unref();
  }

  function onReply(reply: WriterReply): void {
    crashes = 0;
    const item = undone.get(reply.id);
    if (item && reply.error) {
      if (item.records > 0) lost.add(item.records, reply.error);
      else console.warn(`nimbus: WARNING: log store ${item.msg.t} failed: ${reply.error}`);
    }
    settle(reply.id, reply.lastId);
  }

  function onExit(w: Worker, code: number): void {
    if (w !== worker) return;
    worker = undefined;
    if (!ended) crashed(lastError?.message ?? `exit code ${code}`);
  }

  /** A thread died (or could not be made): the oldest undone message is blamed, the rest wait for the next. */
  function crashed(reason: string): void {
    crashes++;
    const [oldest] = undone.values();
    if (oldest && ++oldest.tries >= MAX_TRIES) {
      if (oldest.records > 0) lost.add(oldest.records, 'the log writer thread died on them twice');
      settle(oldest.msg.id, undefined);
    }
    const delay = Math.min(100 * 2 ** (crashes - 1), 10_000);
    console.warn(
      `nimbus: WARNING: the log writer thread stopped (${reason}); ` +
        `starting it again in ${delay} ms (${unwritten} log records to write)`,
    );
    restart = setTimeout(start, delay);
    if (undone.size === 0) restart.unref();
  }

  function request(r: Request, timeoutMs?: number): Promise<number | undefined> {
    // After close() nothing answers: a late prune or delete must not be left waiting (or keep the
    // process alive).
    if (ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const id = nextId++;
      const item: Item = {
        msg: { ...r, id } as WriterRequest,
        records: 0,
        tries: 0,
        done: (lastId) => {
          clearTimeout(timer);
          item.done = undefined;
          resolve(lastId);
        },
      };
      post(item);
      if (timeoutMs === undefined) return;
      timer = setTimeout(() => {
        if (!item.done) return;
        item.done = undefined;
        console.warn(`nimbus: WARNING: the log writer thread did not answer in ${timeoutMs} ms (${r.t})`);
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
    });
  }

  start();
  return {
    write(records) {
      if (ended) {
        lost.add(records.length, 'the log store is closed');
        return;
      }
      const id = nextId++;
      post({ msg: { t: 'batch', id, batch: encodeBatch(records) }, records: records.length, tries: 0 });
      // A thread that stays down must not hold records without bound: the oldest go first.
      for (const item of undone.values()) {
        if (unwritten <= MAX_UNWRITTEN) break;
        if (item.records === 0) continue;
        lost.add(item.records, 'the log writer thread is down and too many records wait for it');
        settle(item.msg.id, undefined);
      }
    },
    request,
    close(timeoutMs = 10_000) {
      closing ??= end(timeoutMs);
      return closing;
    },
  };

  async function end(timeoutMs: number): Promise<void> {
    const done = await request({ t: 'close' }, timeoutMs);
    ended = true;
    clearTimeout(restart);
    clearInterval(keepAlive);
    if (done === undefined && unwritten > 0) lost.add(unwritten, 'the log store closed before they were written');
    for (const id of [...undone.keys()]) settle(id, undefined);
    await worker?.terminate();
    lost.report();
  }
}

/**
 * Where the thread's code is. From the bundle (dist/nimbus.mjs) it is its own entry beside it,
 * dist/log-worker.mjs (scripts/build.mjs). From src/ under tsx (tests, benches) a worker does not
 * get tsx's loader on Node 20, so a two-line module registers it in the thread first.
 */
function writerEntry(): URL {
  if (!import.meta.url.endsWith('.ts')) return new URL('./log-worker.mjs', import.meta.url);
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL('./log-worker.ts', import.meta.url).href);
  const code = `import { register } from ${tsx}; register(); await import(${entry});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

/** Records given up, said at once and then at most every WARN_EVERY_MS (a full disk fails every batch). */
function createLossReport() {
  let count = 0;
  let reason = '';
  let lastAt = 0;
  let timer: NodeJS.Timeout | undefined;
  const report = () => {
    clearTimeout(timer);
    timer = undefined;
    if (count === 0) return;
    console.warn(`nimbus: WARNING: log records not written: ${count} (${reason})`);
    count = 0;
    lastAt = Date.now();
  };
  return {
    add(n: number, why: string) {
      count += n;
      reason = why;
      const wait = lastAt + WARN_EVERY_MS - Date.now();
      if (wait <= 0) report();
      else timer ??= setTimeout(report, wait).unref();
    },
    report,
  };
}
