/**
 * One isolate instance: its state, and `fetch`, which copies a request into the isolate, runs the
 * function's handler, and copies the answer out. Bodies cross whole (up to the body limit).
 */

import { Readable } from 'node:stream';
import type ivm from 'isolated-vm';
import type { AbortLike } from '../../core/abort.js';
import { NimbusError, PLATFORM_ERROR_HEADER } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { createLazyResponse, PushedBody, type RawHeaders, requestHead } from '../channel/index.js';
import type { Instance, InstanceSpec, InstanceState } from '../types.js';
import { DEADLINE_HEADER, REQUEST_ID_HEADER } from '../types.js';
import type { Bridge } from './host-bridge.js';
import { keepAlive } from './keep-alive.js';
import { join } from './prelude/encoding.js';

/** The provider's record of a live instance (shared by isolate-runtime.ts and this file). */
export interface Entry {
  spec: InstanceSpec;
  state: InstanceState;
  isolate: ivm.Isolate;
  context: ivm.Context;
  bridge: Bridge;
  dispatch: ivm.Reference<(...a: any[]) => any>;
  /** The next chunk of a streamed response body: (key) → ArrayBuffer | null | { error }. */
  pull: ivm.Reference<(key: string) => unknown>;
  /** Cancels a streamed response body inside the isolate: (key). */
  cancel: ivm.Reference<(key: string) => void>;
  /** Request bodies the isolate pulls chunk by chunk, by request key. */
  readers: Map<string, BodySource>;
  /** Aborts `request.signal` inside the isolate: (key, reason). */
  abort: ivm.Reference<(key: string, reason: string) => void>;
  settled: ivm.Reference<() => Promise<void>>;
  instance: Instance;
  /** In-flight requests: each one's reject, called when the instance ends under it. */
  inflight: Map<string, (err: Error) => void>;
  /** Resolved when the last in-flight request finishes (graceful stop). */
  drained: (() => void)[];
  ended: boolean;
  /** Why the instance ended, given to requests that arrive after. */
  endError?: NimbusError;
  stopRequested: boolean;
  stopping?: Promise<void>;
  /** Heap in use (V8 heap + external buffers), from the last asynchronous reading. */
  memoryBytes: number;
  memoryPeakBytes: number;
  heapReading: boolean;
}

/** What the instance needs from its provider. */
export interface InstanceHooks {
  bodyLimit: number;
  /** Classifies an error out of the isolate (ending the instance when its isolate is gone). */
  failed(entry: Entry, err: unknown): NimbusError;
  end(entry: Entry, state: 'stopped' | 'failed', reason: string, failure?: NimbusError): void;
  /** How long to watch the isolate's CPU time once a request is past its timeout. */
  spinCheckMs: number;
}

/** A header name as HTTP allows it (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Requests served by this node's isolates so far. */
let served = 0;

/** HTTP statuses whose responses have no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

type DispatchResult = [number, string, string[], ArrayBuffer | null, boolean?] | { error: string };

/** Request bodies up to this size are copied in whole; larger ones, or ones still arriving, stream. */
const WHOLE_BODY_MAX = 64 * 1024;

/** A request body on its way into the isolate: chunks read ahead, then the reader. */
export interface BodySource {
  reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Chunks read ahead, handed out first. */
  queue: Uint8Array[];
  /** A read started ahead and not yet answered. */
  pending?: ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>;
  /** The body ended within the read-ahead. */
  done: boolean;
  size: number;
}

/**
 * Reads what is already there, up to WHOLE_BODY_MAX: a body that ends within it is copied whole
 * (one hop, not one per chunk); one still arriving (a client that waits for the answer before it
 * sends more) must stream, so a read that does not answer within a turn of the loop stops it.
 */
async function prefetch(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<BodySource> {
  const source: BodySource = { reader, queue: [], done: false, size: 0 };
  const turn = () => new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)));
  while (source.size <= WHOLE_BODY_MAX) {
    const next = reader.read();
    const result = await Promise.race([next, turn()]);
    if (result === undefined) {
      source.pending = next;
      return source;
    }
    if (result.done) {
      source.done = true;
      return source;
    }
    source.queue.push(result.value);
    source.size += result.value.byteLength;
  }
  return source;
}

export function createIsolateInstance(entry: Entry, hooks: InstanceHooks): Instance {
  const { spec } = entry;
  return {
    id: spec.id,
    spec,
    get state() {
      return entry.state;
    },
    fetch: (request, options = {}) => serve(entry, hooks, request, options.signal),
  };
}

async function serve(entry: Entry, hooks: InstanceHooks, request: Request, signal?: AbortLike): Promise<Response> {
  if (entry.ended || (entry.state !== 'ready' && entry.state !== 'stopping'))
    throw (
      entry.endError ??
      new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${entry.spec.id} is not running (${entry.state})`)
    );
  if (signal?.aborted) throw signal.reason;
  // The gateway's lazy Request gives its parts as they are (no web Headers, URL or stream made).
  const head = requestHead(request);
  const headers: string[] = [];
  let declared: string | undefined;
  let requestId = '';
  const raw = head.headers;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === DEADLINE_HEADER) continue;
    if (name === 'content-length') declared = raw[i + 1];
    else if (name === REQUEST_ID_HEADER) requestId = raw[i + 1]!;
    headers.push(name, raw[i + 1]!);
  }
  if (declared !== undefined && Number(declared) > hooks.bodyLimit) throw tooLarge(hooks.bodyLimit);
  const hasBody = head.method !== 'GET' && head.method !== 'HEAD' && head.body !== null;
  let body: ArrayBuffer | null = null;
  let source: BodySource | undefined;
  if (hasBody && declared !== undefined && Number(declared) <= WHOLE_BODY_MAX)
    body = await readBody(head.body!, hooks.bodyLimit);
  else if (hasBody) {
    // Unsized or large: copy it whole if it is all there already, else stream it.
    source = await prefetch((Readable.toWeb(head.body!) as ReadableStream<Uint8Array>).getReader());
    if (source.done) body = join(source.queue).buffer as ArrayBuffer;
  }
  const streamIn = source !== undefined && !source.done;
  if (!requestId) requestId = newId('req');
  // Unique (a caller may reuse a request id): the isolate and the host key a request's streams and abort by it.
  const key = `${requestId}#${++served}`;
  const url = `http://${raw[1]}${head.path}`;
  if (streamIn) entry.readers.set(key, source!);

  return new Promise<Response>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      entry.inflight.delete(key);
      if (entry.inflight.size === 0) for (const r of entry.drained.splice(0)) r();
    };
    const onAbort = () => {
      finish();
      dropReader(entry, key);
      reject(signal!.reason);
      abortInside(entry, key, 'The request was cancelled');
      watchSpin(entry, hooks, 'kept its CPU busy after its request was cancelled: terminated');
    };
    entry.inflight.set(key, (err) => {
      finish();
      reject(err);
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    // The CPU watchdog: past the timeout, a busy isolate is ended; an idle one (awaiting
    // something) only loses this request.
    timer = setTimeout(() => {
      finish();
      reject(
        new NimbusError(
          'NIMBUS_ERR_TIMEOUT',
          `Function ${entry.spec.function} did not answer within its timeout of ${entry.spec.timeoutMs / 1000} s`,
        ),
      );
      abortInside(entry, key, 'The request timed out');
      watchSpin(
        entry,
        hooks,
        `kept its CPU busy past the ${entry.spec.timeoutMs} ms timeout: terminated (NIMBUS_ERR_TIMEOUT)`,
      );
    }, entry.spec.timeoutMs);
    timer.unref();

    keepAlive(
      entry.dispatch.apply(undefined, [head.method, url, headers, body, requestId, key, streamIn], {
        arguments: { copy: true },
        result: { promise: true, copy: true },
      }),
    ).then(
      (result: DispatchResult) => {
        if (!entry.inflight.has(key)) return;
        finish();
        try {
          resolve(toResponse(entry, hooks, key, result));
        } catch (err) {
          // What came out of the isolate is the function's, whatever it did to its prelude: a
          // shape Node refuses (a header value with a newline, a bad status) is its error.
          dropReader(entry, key);
          const message = `The function's response is invalid: ${(err as Error).message}`;
          resolve(toResponse(entry, hooks, key, { error: message }));
        }
      },
      (err: unknown) => {
        if (!entry.inflight.has(key)) return;
        finish();
        dropReader(entry, key);
        reject(hooks.failed(entry, err));
      },
    );
  });
}

/** Fires the request's `signal` inside the isolate (queued behind running code; ignored once gone). */
function abortInside(entry: Entry, key: string, reason: string): void {
  if (entry.ended) return;
  entry.abort.apply(undefined, [key, reason]).catch(() => {});
}

/** Ends the instance when its isolate is still burning CPU a moment later (a busy loop). */
function watchSpin(entry: Entry, hooks: InstanceHooks, reason: string, windows = 2): void {
  if (entry.ended) return;
  const before = entry.isolate.cpuTime;
  setTimeout(() => {
    if (entry.ended || entry.isolate.isDisposed) return;
    const busyNs = Number(entry.isolate.cpuTime - before);
    // Over half of each of two windows on CPU: spinning, not waiting. Two, because on a loaded
    // machine one short task descheduled mid-run can fill one window (isolated-vm counts a
    // running task's time by the clock until it ends).
    if (busyNs <= hooks.spinCheckMs * 0.5 * 1e6) return;
    if (windows > 1) watchSpin(entry, hooks, reason, windows - 1);
    else hooks.end(entry, 'failed', reason);
  }, hooks.spinCheckMs).unref();
}

const tooLarge = (limit: number) =>
  new NimbusError('NIMBUS_ERR_PAYLOAD_TOO_LARGE', `The request body exceeds the isolate limit of ${limit} bytes`);

/** A small request body, read whole (its declared size is at most WHOLE_BODY_MAX). */
async function readBody(body: Readable, limit: number): Promise<ArrayBuffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return join(chunks).buffer as ArrayBuffer;
}

/** The next chunk of a streamed request body for the isolate (null at its end). */
export async function readChunk(
  entry: Entry,
  key: string,
  limit: number,
): Promise<ArrayBuffer | null | { error: string }> {
  const source = entry.readers.get(key);
  if (!source) return null;
  const queued = source.queue.shift();
  if (queued) return queued.buffer.slice(queued.byteOffset, queued.byteOffset + queued.byteLength) as ArrayBuffer;
  const next = source.pending ?? source.reader.read();
  source.pending = undefined;
  const { value, done } = await next;
  if (done) {
    entry.readers.delete(key);
    return null;
  }
  source.size += value.byteLength;
  if (source.size > limit) {
    dropReader(entry, key);
    return { error: tooLarge(limit).message };
  }
  return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer;
}

/** Lets go of a request body the isolate no longer reads. */
function dropReader(entry: Entry, key: string): void {
  const source = entry.readers.get(key);
  if (!source) return;
  entry.readers.delete(key);
  source.reader.cancel().catch(() => {});
}

function toResponse(entry: Entry, hooks: InstanceHooks, key: string, result: DispatchResult): Response {
  if (!Array.isArray(result)) {
    dropReader(entry, key);
    return new Response(JSON.stringify({ error: { code: 'NIMBUS_ERR_FUNCTION_ERROR', message: result.error } }), {
      status: 500,
      headers: { 'content-type': 'application/json', [PLATFORM_ERROR_HEADER]: 'NIMBUS_ERR_FUNCTION_ERROR' },
    });
  }
  const [status, statusText, flat, bytes, streamed] = result;
  if (!streamed && !statusText) {
    // A whole answer (the common case): a lazy Response the gateway writes without web objects.
    dropReader(entry, key);
    const headers: RawHeaders = {};
    for (let i = 0; i < flat.length; i += 2) {
      const name = String(flat[i]).toLowerCase();
      const value = String(flat[i + 1]);
      // Node refuses these when writing; the old Headers path threw here too.
      if (!TOKEN.test(name) || /[\0\r\n]/.test(value)) throw new TypeError(`Invalid header: ${name}`);
      const had = headers[name];
      headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
    }
    let body: PushedBody | null = null;
    if (!NULL_BODY.has(status)) {
      body = new PushedBody(Number.POSITIVE_INFINITY);
      if (bytes && bytes.byteLength > 0) body.push(Buffer.from(bytes));
      body.end();
    }
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`Invalid status ${status}`);
    return createLazyResponse({ status, headers, body });
  }
  const headers = new Headers();
  for (let i = 0; i < flat.length; i += 2) headers.append(flat[i], flat[i + 1]);
  const end = () => {
    dropReader(entry, key);
    if (!entry.ended) entry.cancel.apply(undefined, [key]).catch(() => {});
  };
  if (NULL_BODY.has(status) || !streamed) {
    // A whole answer: the isolate is done with this request (a streamed one may still read).
    if (streamed) end();
    else dropReader(entry, key);
    return new Response(NULL_BODY.has(status) ? null : new Uint8Array(bytes!), { status, statusText, headers });
  }
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: unknown;
      try {
        chunk = await keepAlive(entry.pull.apply(undefined, [key], { result: { promise: true, copy: true } }));
      } catch (err) {
        end();
        controller.error(hooks.failed(entry, err));
        return;
      }
      if (chunk === null) {
        end();
        controller.close();
      } else if (chunk instanceof ArrayBuffer) controller.enqueue(new Uint8Array(chunk));
      else {
        end();
        controller.error(new NimbusError('NIMBUS_ERR_FUNCTION_ERROR', (chunk as { error: string }).error));
      }
    },
    cancel: end,
  });
  return new Response(body, { status, statusText, headers });
}
