/**
 * The log writer thread (a worker_threads Worker; built to dist/log-worker.mjs): owns the log
 * database's write connection, so inserts and retention never take the main thread's time.
 * Messages are handled one at a time in the order posted; each gets one reply with its id, so a
 * reply also says that everything posted before it is on disk (or failed, and said so).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { LogBatch } from './log-batch.js';
import type { LogRetention } from './log-store.js';
import { createLogWriter } from './log-writer.js';

export type WriterRequest =
  | { t: 'batch'; id: number; batch: LogBatch }
  | { t: 'sync'; id: number }
  | { t: 'prune'; id: number; now: number }
  | { t: 'delete'; id: number; fn: string }
  | { t: 'close'; id: number };

/** `lastId`: the id of the last record on disk when the request was done. */
export interface WriterReply {
  id: number;
  lastId: number;
  error?: string;
}

export interface WriterData {
  path: string;
  retention: LogRetention;
  /** This store's id: with each batch's number it tells batches already written (log-writer.ts). */
  epoch: string;
}

const port = parentPort!;
const { path, retention, epoch } = workerData as WriterData;
const writer = createLogWriter(path, retention, epoch);

port.on('message', (m: WriterRequest) => {
  let error: string | undefined;
  try {
    if (m.t === 'batch') writer.write(m.batch, m.id);
    else if (m.t === 'prune') writer.prune(m.now);
    else if (m.t === 'delete') writer.deleteFunction(m.fn);
    else if (m.t === 'close') writer.close();
  } catch (e) {
    const { code, message } = e as { code?: string; message: string };
    error = code ? `${code}: ${message}` : message;
  }
  // After `close` the main thread ends this thread (worker.terminate()).
  port.postMessage({ id: m.id, lastId: writer.lastId(), ...(error ? { error } : {}) } satisfies WriterReply);
});
