/**
 * One isolate instance: its state, and `fetch`, which copies a request into the isolate, runs the
 * function's handler, and copies the answer out. Bodies cross whole (up to the body limit).
 */
import type ivm from 'isolated-vm';
import { NimbusError, PLATFORM_ERROR_HEADER } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Instance, InstanceSpec, InstanceState } from '../types.js';
import { DEADLINE_HEADER, REQUEST_ID_HEADER } from '../types.js';
import type { Bridge } from './host-bridge.js';

/** The provider's record of a live instance (shared by isolate-runtime.ts and this file). */
export interface Entry {
  spec: InstanceSpec;
  state: InstanceState;
  isolate: ivm.Isolate;
  context: ivm.Context;
  bridge: Bridge;
  dispatch: ivm.Reference<(...a: any[]) => any>;
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

/** HTTP statuses whose responses have no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

type DispatchResult = [number, string, string[], ArrayBuffer] | { error: string };

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

async function serve(entry: Entry, hooks: InstanceHooks, request: Request, signal?: AbortSignal): Promise<Response> {
  if (entry.ended || (entry.state !== 'ready' && entry.state !== 'stopping'))
    throw (
      entry.endError ??
      new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${entry.spec.id} is not running (${entry.state})`)
    );
  signal?.throwIfAborted();
  const body = await readBody(request, hooks.bodyLimit);
  const headers: string[] = [];
  request.headers.forEach((value, name) => {
    if (name !== DEADLINE_HEADER) headers.push(name, value);
  });
  const requestId = request.headers.get(REQUEST_ID_HEADER) || newId('req');
  const key = `${requestId}#${newId('s', 3)}`;

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

    entry.dispatch
      .apply(undefined, [request.method, request.url, headers, body, requestId, key], {
        arguments: { copy: true },
        result: { promise: true, copy: true },
      })
      .then(
        (result: DispatchResult) => {
          if (!entry.inflight.has(key)) return;
          finish();
          resolve(toResponse(result));
        },
        (err: unknown) => {
          if (!entry.inflight.has(key)) return;
          finish();
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

async function readBody(request: Request, limit: number): Promise<ArrayBuffer | null> {
  if (request.method === 'GET' || request.method === 'HEAD' || request.body === null) return null;
  const declared = Number(request.headers.get('content-length') ?? 0);
  const tooLarge = () =>
    new NimbusError('NIMBUS_ERR_PAYLOAD_TOO_LARGE', `The request body exceeds the isolate limit of ${limit} bytes`);
  if (declared > limit) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out.buffer;
}

function toResponse(result: DispatchResult): Response {
  if (!Array.isArray(result)) {
    return new Response(JSON.stringify({ error: { code: 'NIMBUS_ERR_FUNCTION_ERROR', message: result.error } }), {
      status: 500,
      headers: { 'content-type': 'application/json', [PLATFORM_ERROR_HEADER]: 'NIMBUS_ERR_FUNCTION_ERROR' },
    });
  }
  const [status, statusText, flat, bytes] = result;
  const headers = new Headers();
  for (let i = 0; i < flat.length; i += 2) headers.append(flat[i], flat[i + 1]);
  return new Response(NULL_BODY.has(status) ? null : new Uint8Array(bytes), { status, statusText, headers });
}
