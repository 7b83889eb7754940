/**
 * The web-standard surface installed in every isolate (bundled to dist/isolate/prelude.js and
 * baked into the isolates' startup snapshot), and the isolate's side of the host boundary:
 * `__nimbus.bind` (host callbacks, env), `load` (the function module), `dispatch` (one request),
 * `fire` (a timer). The host takes references to these and deletes `__nimbus` before user code runs.
 */
import { atob, btoa, TextDecoder, TextEncoder, toBytes } from './encoding.js';
import { AbortController, AbortSignal, Request, Response } from './fetch-api.js';
import { Blob, File, FormData } from './form-data.js';
import { Headers } from './headers.js';
import { ReadableStream, TransformStream, WritableStream } from './streams.js';
import { bindSubtle, CryptoKey, DOMException, SubtleCrypto, subtle } from './subtle.js';
import { URL, URLSearchParams } from './url.js';

/** ivm.Callback handles given by the host (called like plain functions). */
interface Host {
  log(stream: 'stdout' | 'stderr', line: string, requestId?: string): void;
  timer(id: number, ms: number): void;
  clearTimer(id: number): void;
  random(n: number): ArrayBuffer;
  /** An ivm.Reference to the host's fetch; rejects unless the function has `network: egress`. */
  fetch?: HostRef<FetchResult | { error: string }>;
  /** The next chunk of a streamed request body, by the host's request key. */
  read?: HostRef<Chunk>;
}
type FetchResult = [number, string, string[], ArrayBuffer];
/** An ivm.Reference to a host function, as seen inside the isolate. */
type HostRef<R> = { apply(self: undefined, args: unknown[], options: object): Promise<R> };
/** One chunk of a streamed body (null at its end), or why it failed. */
type Chunk = ArrayBuffer | null | { error: string };
type Fn = (...args: any[]) => any;

const g = globalThis as any;
let host: Host | undefined;
let env: Record<string, string> = {};
let handler: Fn | undefined;
/** The request whose handler is running synchronously now, else the only one in flight. */
let current: string | undefined;
const inflight = new Set<string>();
const pending = new Set<Promise<unknown>>();
/** Each in-flight request's AbortController, by the host's key for it. */
const aborts = new Map<string, AbortController>();

function format(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

function print(stream: 'stdout' | 'stderr', args: unknown[], tagged = true) {
  const requestId = !tagged ? undefined : (current ?? (inflight.size === 1 ? [...inflight][0] : undefined));
  for (const line of args.map(format).join(' ').split('\n')) host?.log(stream, line, requestId);
}

const out = (...a: unknown[]) => print('stdout', a);
const err = (...a: unknown[]) => print('stderr', a);
const console = { log: out, info: out, debug: out, trace: out, warn: err, error: err, dir: out, table: out };

let timerIds = 0;
const timers = new Map<number, { fn: Fn; args: unknown[]; interval?: number }>();
function setTimer(fn: Fn, ms: unknown, args: unknown[], interval: boolean): number {
  const id = ++timerIds;
  const delay = Math.max(0, Number(ms) || 0);
  timers.set(id, { fn, args, interval: interval ? delay : undefined });
  host!.timer(id, delay);
  return id;
}
function clearTimer(id: number) {
  if (timers.delete(id)) host?.clearTimer(id);
}

/** Integer typed arrays only, as WebCrypto says (and Node's errors). */
const INTEGER_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
];
function getRandomValues<T extends ArrayBufferView>(array: T): T {
  if (!INTEGER_ARRAYS.some((type) => array instanceof type))
    throw new DOMException('The data argument must be an integer-type TypedArray', 'TypeMismatchError');
  if (array.byteLength > 65536)
    throw new DOMException('The requested length exceeds 65,536 bytes', 'QuotaExceededError');
  toBytes(array).set(new Uint8Array(host!.random(array.byteLength)));
  return array;
}
function randomUUID(): string {
  const b = getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function fetch(input: string | URL | Request, init?: any): Promise<Response> {
  const request = input instanceof Request && init === undefined ? input : new Request(input, init);
  const body = request.body ? await request.arrayBuffer() : null;
  const answer = await host!.fetch!.apply(undefined, [request.method, request.url, request.headers._flat(), body], {
    arguments: { copy: true },
    result: { promise: true, copy: true },
  });
  if (!Array.isArray(answer)) throw new TypeError(answer.error);
  const [status, statusText, headers, bytes] = answer;
  const pairs: [string, string][] = [];
  for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]]);
  const nullBody = status === 204 || status === 205 || status === 304 || request.method === 'HEAD';
  return new Response(nullBody ? null : new Uint8Array(bytes), { status, statusText, headers: pairs });
}

Object.assign(g, {
  self: g,
  console,
  Headers,
  Request,
  Response,
  URL,
  URLSearchParams,
  TextEncoder,
  TextDecoder,
  ReadableStream,
  WritableStream,
  TransformStream,
  AbortController,
  AbortSignal,
  atob,
  btoa,
  fetch,
  crypto: { getRandomValues, randomUUID, subtle },
  CryptoKey,
  SubtleCrypto,
  Blob,
  File,
  FormData,
  DOMException,
  queueMicrotask: (fn: Fn) => void Promise.resolve().then(fn),
  setTimeout: (fn: Fn, ms?: number, ...args: unknown[]) => setTimer(fn, ms, args, false),
  setInterval: (fn: Fn, ms?: number, ...args: unknown[]) => setTimer(fn, ms, args, true),
  clearTimeout: clearTimer,
  clearInterval: clearTimer,
  performance: { now: () => Date.now(), timeOrigin: Date.now() },
});

/** Streamed response bodies being pulled by the host, by request key. */
const outgoing = new Map<string, { read(): Promise<IteratorResult<unknown>>; cancel(): Promise<void> }>();

/** A request body pulled from the host chunk by chunk. */
function incoming(key: string): ReadableStream {
  return new ReadableStream({
    async pull(c) {
      const chunk = await host!.read!.apply(undefined, [key], { result: { promise: true, copy: true } });
      if (chunk === null) c.close();
      else if (chunk instanceof ArrayBuffer) c.enqueue(new Uint8Array(chunk));
      else c.error(new TypeError(chunk.error));
    },
  });
}

/** Plain return values become responses, as in the process runtime's guest. */
function toResponse(value: unknown): Response {
  if (value instanceof Response) return value;
  if (typeof value === 'string')
    return new Response(value, { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  return Response.json(value ?? null);
}

g.__nimbus = {
  /** The host's callbacks, in the order of host-bridge.ts `args` (bound before the isolate has a function). */
  bind(
    log: Host['log'],
    timer: Host['timer'],
    clear: Host['clearTimer'],
    random: Host['random'],
    fetchOut: Host['fetch'],
    read: Host['read'],
    subtleCall: Parameters<typeof bindSubtle>[0],
    freeKey: Parameters<typeof bindSubtle>[1],
  ) {
    host = { log, timer, clearTimer: clear, random, fetch: fetchOut, read };
    bindSubtle(subtleCall, freeKey, (fn) => setTimer(fn, 0, [], false));
  },
  /** The function's env, set before its module runs. */
  configure(e: Record<string, string>) {
    env = Object.freeze({ ...e }) as Record<string, string>;
    // Node-isms many functions print with; `process.env` is the function's env only.
    g.process = {
      env,
      stdout: { write: (s: string) => print('stdout', [String(s).replace(/\n$/, '')], false) },
      stderr: { write: (s: string) => print('stderr', [String(s).replace(/\n$/, '')], false) },
    };
  },
  /** Picks the fetch handler; the message of a throw is the start failure. */
  load(ns: Record<string, unknown>): string {
    const def = ns.default as Fn | { fetch?: Fn } | undefined;
    if (typeof def === 'function') handler = def;
    else if (def && typeof def.fetch === 'function') handler = def.fetch.bind(def);
    else if (typeof ns.handler === 'function' || (def && typeof (def as any).handler === 'function'))
      throw new Error(
        'Lambda-style `handler` exports are not supported with runtime isolate: export default { fetch(request, env, ctx) }',
      );
    else throw new Error('Handler not found: module exports neither `default` nor `handler`');
    return 'fetch';
  },
  fire(id: number) {
    const t = timers.get(id);
    if (!t) return;
    if (t.interval === undefined) timers.delete(id);
    else host!.timer(id, t.interval);
    t.fn(...t.args);
  },
  /** Aborts `request.signal` of an in-flight request (its caller went away or it timed out). */
  abort(key: string, reason: string) {
    aborts.get(key)?.abort(new Error(reason));
  },
  /** The next chunk of a streamed response body (null at its end). */
  async pull(key: string): Promise<Chunk> {
    const reader = outgoing.get(key);
    if (!reader) return null;
    try {
      const { value, done } = await reader.read();
      if (done) {
        outgoing.delete(key);
        return null;
      }
      const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : toBytes(value as Uint8Array);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    } catch (e) {
      outgoing.delete(key);
      console.error(e);
      return { error: e instanceof Error ? e.message : String(e) };
    }
  },
  /** The caller stopped reading a streamed response. */
  cancel(key: string) {
    void outgoing.get(key)?.cancel();
    outgoing.delete(key);
  },
  /**
   * One request: answers [status, statusText, headers, body, streamed] or { error } when the
   * handler threw. `streamIn`: the body is pulled from the host chunk by chunk; a response made
   * from a stream goes out the same way (`pull`), one made from bytes goes out whole.
   */
  async dispatch(
    method: string,
    url: string,
    headers: string[],
    body: ArrayBuffer | null,
    requestId: string,
    key = requestId,
    streamIn = false,
  ) {
    const ctx = {
      requestId,
      waitUntil(p: Promise<unknown>) {
        const settled = Promise.resolve(p).catch((e) => console.error('waitUntil promise rejected:', e));
        pending.add(settled);
        void settled.finally(() => pending.delete(settled));
      },
      passThroughOnException() {},
    };
    inflight.add(requestId);
    const aborter = new AbortController();
    aborts.set(key, aborter);
    try {
      let result: unknown;
      current = requestId;
      try {
        const request = new Request(url, {
          method,
          headers: Headers._fromFlat(headers),
          body: streamIn ? incoming(key) : body ? new Uint8Array(body) : null,
          signal: aborter.signal,
        });
        result = handler!(request, env, ctx);
      } finally {
        current = undefined;
      }
      const response = toResponse(await result);
      if (response._isStream()) {
        outgoing.set(key, response.body!.getReader());
        return [response.status, response.statusText, response.headers._flat(), null, true];
      }
      const bytes = await response._bytes();
      const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      return [response.status, response.statusText, response.headers._flat(), copy];
    } catch (e) {
      current = requestId;
      console.error(e);
      current = undefined;
      return { error: e instanceof Error ? e.message : String(e) };
    } finally {
      inflight.delete(requestId);
      aborts.delete(key);
    }
  },
  /** Resolves when every waitUntil promise has settled (a graceful stop waits for it). */
  async settled() {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  },
};
