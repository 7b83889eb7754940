/**
 * A web-standard Request made lazily from the parts of a Node request (after @hono/node-server's
 * lightweight Request). `new Request()` with a streamed body and a signal costs tens of µs and a
 * web stream per request; most readers only look at method, url and headers, or read the body
 * once. This object is a real `instanceof Request`: method, url, headers, signal and the
 * text/json/arrayBuffer/bytes readers are served from the parts, and anything else (body,
 * clone, formData, undici's own internal slots, e.g. `fetch(request)`) first builds the
 * complete Request and delegates to it. The host (gateway, channel) and the guest both use it,
 * so it imports only node builtins.
 */
import type { Readable } from 'node:stream';
import { Readable as NodeReadable } from 'node:stream';

/** What a lazy Request is made of. */
export interface LazyRequestParts {
  method: string;
  /** Authority the URL names (`host[:port]`). */
  host: string;
  /** Path and query, starting with `/`. */
  path: string;
  /** Flat `[name, value, …]` list, duplicates allowed; names in any case. */
  headers: string[];
  /** The body as a Node stream, or null (GET, HEAD). Whoever reads it first owns it. */
  body: Readable | null;
  /** `request.signal`, made on first use. */
  signal?: () => AbortSignal;
  /**
   * Set by the gateway: `headers` are already what the instance hop sends (lowercase, `host`
   * first, no hop-by-hop or `expect`), so the channel takes them as they are.
   */
  wire?: boolean;
}

const kParts = Symbol('nimbus.lazyRequest.parts');
const kReal = Symbol('nimbus.lazyRequest.real');
const kHeaders = Symbol('nimbus.lazyRequest.headers');
const kUsed = Symbol('nimbus.lazyRequest.used');

interface LazyRequest {
  [kParts]: LazyRequestParts;
  [kReal]?: Request;
  [kHeaders]?: Headers;
  [kUsed]?: boolean;
}

const GlobalRequest = globalThis.Request;

function headersOf(self: LazyRequest): Headers {
  let headers = self[kHeaders];
  if (!headers) {
    const raw = self[kParts].headers;
    headers = new Headers();
    for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
    self[kHeaders] = headers;
  }
  return headers;
}

function realOf(self: LazyRequest): Request {
  let real = self[kReal];
  if (!real) {
    const parts = self[kParts];
    const body = parts.body && !self[kUsed] ? (NodeReadable.toWeb(parts.body) as ReadableStream<Uint8Array>) : null;
    real = new GlobalRequest(`http://${parts.host}${parts.path}`, {
      method: parts.method,
      headers: headersOf(self),
      body,
      duplex: 'half',
    } as RequestInit);
    self[kReal] = real;
  }
  return real;
}

/** Reads the whole body from the Node stream, without a web stream in between. */
async function readBody(self: LazyRequest): Promise<Buffer> {
  if (self[kReal]) return Buffer.from(await self[kReal].arrayBuffer());
  if (self[kUsed]) throw new TypeError('Body is unusable: Body has already been read');
  self[kUsed] = true;
  const body = self[kParts].body;
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

const prototype: Record<PropertyKey, unknown> = {};
Object.defineProperties(prototype, {
  method: {
    get(this: LazyRequest) {
      return this[kParts].method;
    },
  },
  url: {
    get(this: LazyRequest) {
      return `http://${this[kParts].host}${this[kParts].path}`;
    },
  },
  headers: {
    get(this: LazyRequest) {
      return this[kReal]?.headers ?? headersOf(this);
    },
  },
  signal: {
    get(this: LazyRequest) {
      const make = this[kParts].signal;
      return make ? make() : realOf(this).signal;
    },
  },
  bodyUsed: {
    get(this: LazyRequest) {
      return this[kReal]?.bodyUsed ?? this[kUsed] === true;
    },
  },
  text: {
    value(this: LazyRequest) {
      return readBody(this).then((b) => b.toString('utf8'));
    },
  },
  json: {
    value(this: LazyRequest) {
      return readBody(this).then((b) => JSON.parse(b.toString('utf8')));
    },
  },
  arrayBuffer: {
    value(this: LazyRequest) {
      return readBody(this).then((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    },
  },
  bytes: {
    value(this: LazyRequest) {
      return readBody(this).then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    },
  },
  [Symbol.for('nodejs.util.inspect.custom')]: {
    value(this: LazyRequest) {
      return `Request (lazy) ${this[kParts].method} http://${this[kParts].host}${this[kParts].path}`;
    },
  },
});
// Everything else comes from the complete Request, built on first use.
for (const key of Object.getOwnPropertyNames(GlobalRequest.prototype)) {
  if (key === 'constructor' || key in prototype) continue;
  const desc = Object.getOwnPropertyDescriptor(GlobalRequest.prototype, key)!;
  if (typeof desc.value === 'function') {
    Object.defineProperty(prototype, key, {
      value(this: LazyRequest, ...args: unknown[]) {
        return (realOf(this) as unknown as Record<string, (...a: unknown[]) => unknown>)[key]!(...args);
      },
    });
  } else if (desc.get) {
    Object.defineProperty(prototype, key, {
      get(this: LazyRequest) {
        return (realOf(this) as unknown as Record<string, unknown>)[key];
      },
    });
  }
}
// undici keeps a Request's state in symbol-keyed own slots (`fetch(request)`, `new Request(request)`
// read them): forward each to the complete Request.
for (const slot of Object.getOwnPropertySymbols(new GlobalRequest('http://localhost/'))) {
  Object.defineProperty(prototype, slot, {
    get(this: LazyRequest) {
      return (realOf(this) as unknown as Record<symbol, unknown>)[slot];
    },
  });
}
Object.setPrototypeOf(prototype, GlobalRequest.prototype);

/** A Request (`instanceof Request` holds) built from `parts` only as far as it is used. */
export function createLazyRequest(parts: LazyRequestParts): Request {
  const request = Object.create(prototype) as LazyRequest;
  request[kParts] = parts;
  return request as unknown as Request;
}

/**
 * Takes the parts of a lazy Request whose body nobody has read or exposed yet, so the caller can
 * move the request on with Node streams (the body is the caller's from then on); undefined for
 * any other Request. Headers reflect changes made through `request.headers`.
 */
export function takeLazyRequestParts(request: Request): LazyRequestParts | undefined {
  const self = request as unknown as LazyRequest;
  const parts = self[kParts];
  if (!parts || self[kReal] || self[kUsed]) return undefined;
  self[kUsed] = true;
  const headers = self[kHeaders];
  if (!headers) return parts;
  const flat: string[] = [];
  for (const [name, value] of headers) flat.push(name, value);
  return { ...parts, headers: flat };
}
