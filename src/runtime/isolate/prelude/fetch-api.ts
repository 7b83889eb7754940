/**
 * Request, Response, AbortController / AbortSignal for the isolate. A body is held whole (bytes)
 * or as a ReadableStream made inside the isolate; `body` always reads as a stream.
 */
import { join, TextDecoder, TextEncoder, toBytes } from './encoding.js';
import { Blob, encodeMultipart, FormData, parseForm } from './form-data.js';
import { Headers, type HeadersInit } from './headers.js';
import { ReadableStream } from './streams.js';
import { URL, URLSearchParams } from './url.js';

type BodyInit =
  | string
  | ArrayBuffer
  | ArrayBufferView
  | URLSearchParams
  | FormData
  | Blob
  | ReadableStream
  | null
  | undefined;

const encoder = new TextEncoder();

/**
 * An http(s) URL already in the form the URL parser would print: lowercase host, no default
 * port, no dot segments, only characters no part of the URL encodes. The host hands every request
 * URL over in this form, so most requests skip the parser (≈ a third of an isolate's time per
 * request for a hello function).
 */
const CANONICAL = /^https?:\/\/[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::([1-9][0-9]{0,4}))?\/[A-Za-z0-9\-._~!$&()*+,;=:@%/?]*$/;
const NOT_CANONICAL = /^http:\/\/[^/]*:80\/|^https:\/\/[^/]*:443\/|\/\.\.?(\/|\?|$)|\?.*\?|%(?![0-9A-Fa-f]{2})|%2e/i;

/** True when `input` is an http(s) URL the parser would print unchanged. */
export function isCanonicalHref(input: string): boolean {
  const m = CANONICAL.exec(input);
  return m !== null && (m[1] === undefined || Number(m[1]) <= 65535) && !NOT_CANONICAL.test(input);
}

/** The URL's href: `input` itself when it is canonical already. */
export function hrefOf(input: string): string {
  return isCanonicalHref(input) ? input : new URL(input).href;
}

export class AbortSignal {
  aborted = false;
  reason: unknown = undefined;
  onabort: ((e: unknown) => void) | null = null;
  #listeners: ((e: unknown) => void)[] = [];
  addEventListener(type: string, fn: (e: unknown) => void) {
    if (type === 'abort') this.#listeners.push(fn);
  }
  removeEventListener(_type: string, fn: (e: unknown) => void) {
    this.#listeners = this.#listeners.filter((l) => l !== fn);
  }
  throwIfAborted() {
    if (this.aborted) throw this.reason;
  }
  /** @internal */
  _abort(reason: unknown) {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new Error('This operation was aborted');
    const event = { type: 'abort', target: this };
    this.onabort?.(event);
    for (const l of this.#listeners) l(event);
  }
  static abort(reason?: unknown) {
    const s = new AbortSignal();
    s._abort(reason);
    return s;
  }
}

export class AbortController {
  readonly signal = new AbortSignal();
  abort(reason?: unknown) {
    this.signal._abort(reason);
  }
}

/** Bytes of a body init, or the stream itself; the content type it implies. */
function extract(init: BodyInit): { bytes?: Uint8Array; stream?: ReadableStream; type?: string } {
  if (init === null || init === undefined) return {};
  if (typeof init === 'string') return { bytes: encoder.encode(init), type: 'text/plain;charset=UTF-8' };
  if (init instanceof URLSearchParams)
    return { bytes: encoder.encode(init.toString()), type: 'application/x-www-form-urlencoded;charset=UTF-8' };
  if (init instanceof FormData) return encodeMultipart(init);
  if (init instanceof Blob) return { bytes: init._bytes.slice(), type: init.type || undefined };
  if (init instanceof ReadableStream) return { stream: init };
  if (init instanceof ArrayBuffer || ArrayBuffer.isView(init)) return { bytes: toBytes(init).slice() };
  return { bytes: encoder.encode(String(init)), type: 'text/plain;charset=UTF-8' };
}

class Body {
  #bytes?: Uint8Array;
  #stream?: ReadableStream;
  #used = false;
  readonly headers: Headers;
  constructor(init: BodyInit, headers: Headers) {
    this.headers = headers;
    const { bytes, stream, type } = extract(init);
    this.#bytes = bytes;
    this.#stream = stream;
    if (type && !headers.has('content-type')) headers.set('content-type', type);
  }
  get body(): ReadableStream | null {
    if (this.#stream) return this.#stream;
    if (!this.#bytes) return null;
    const bytes = this.#bytes;
    this.#stream = new ReadableStream({
      start(c) {
        if (bytes.byteLength) c.enqueue(bytes);
        c.close();
      },
    });
    this.#bytes = undefined;
    return this.#stream;
  }
  /** @internal True when the body is an unread stream (it then leaves the isolate streamed). */
  _isStream(): boolean {
    return this.#stream !== undefined && !this.#used && !this.#stream.locked;
  }
  get bodyUsed() {
    return this.#used;
  }
  /** @internal The whole body as bytes (reads a stream to its end). */
  async _bytes(): Promise<Uint8Array> {
    if (this.#used) throw new TypeError('Body has already been used');
    this.#used = true;
    if (this.#bytes) return this.#bytes;
    if (!this.#stream) return new Uint8Array(0);
    const chunks: Uint8Array[] = [];
    for await (const chunk of this.#stream)
      chunks.push(typeof chunk === 'string' ? encoder.encode(chunk) : toBytes(chunk as Uint8Array));
    return join(chunks);
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this._bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  async bytes(): Promise<Uint8Array> {
    return (await this._bytes()).slice();
  }
  async text(): Promise<string> {
    return new TextDecoder().decode(await this._bytes());
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
  /** urlencoded or multipart/form-data, by the body's content type. */
  async formData(): Promise<FormData> {
    return parseForm(await this._bytes(), this.headers.get('content-type'));
  }
  async blob(): Promise<Blob> {
    return new Blob([await this._bytes()], { type: this.headers.get('content-type') ?? '' });
  }
  /** @internal Bytes for clone(), when the body is still bytes. */
  _cloneInit(): Uint8Array | undefined {
    if (this.#used || this.#stream) throw new TypeError('Only an unread, non-stream body can be cloned in isolates');
    return this.#bytes;
  }
}

export interface RequestInit {
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit;
  signal?: AbortSignal;
  redirect?: string;
}

export class Request extends Body {
  readonly method: string;
  readonly url: string;
  readonly signal: AbortSignal;
  readonly redirect: string;
  constructor(input: string | URL | Request, init: RequestInit = {}) {
    const from = input instanceof Request ? input : undefined;
    const headers = new Headers(init.headers ?? from?.headers);
    super(init.body !== undefined ? init.body : from ? from._cloneInit() : null, headers);
    this.url = from ? from.url : hrefOf(String(input));
    this.method = (init.method ?? from?.method ?? 'GET').toUpperCase();
    this.signal = init.signal ?? from?.signal ?? new AbortSignal();
    this.redirect = init.redirect ?? from?.redirect ?? 'follow';
    if ((this.method === 'GET' || this.method === 'HEAD') && init.body != null)
      throw new TypeError('Request with GET/HEAD method cannot have body');
  }
  clone() {
    return new Request(this);
  }
}

export interface ResponseInit {
  status?: number;
  statusText?: string;
  headers?: HeadersInit;
}

export class Response extends Body {
  readonly status: number;
  readonly statusText: string;
  readonly type = 'default';
  readonly redirected = false;
  url = '';
  constructor(body: BodyInit = null, init: ResponseInit = {}) {
    super(body, new Headers(init.headers));
    this.status = init.status ?? 200;
    if (!Number.isInteger(this.status) || this.status < 200 || this.status > 599)
      throw new RangeError(`Invalid response status ${init.status}: expected 200 to 599`);
    this.statusText = init.statusText ?? '';
  }
  get ok() {
    return this.status >= 200 && this.status < 300;
  }
  clone() {
    return new Response(this._cloneInit() ?? null, {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers,
    });
  }
  static json(data: unknown, init: ResponseInit = {}) {
    const headers = new Headers(init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new Response(JSON.stringify(data), { ...init, headers });
  }
  static redirect(url: string, status = 302) {
    return new Response(null, { status, headers: { location: new URL(url).href } });
  }
  static error(): Response {
    throw new TypeError('Response.error() is not available in isolates');
  }
}
