/**
 * A web-standard Response made lazily from what the channel received (after @hono/node-server's
 * lightweight Response): a real `instanceof Response` whose status and headers are served from
 * the raw parts, and whose body is a PushedBody until someone asks for a web stream. The gateway
 * takes the parts and writes them to its client with Node streams (no web stream, a small body
 * in one write); any other reader gets the complete Response, built on first use.
 */
import type { PushedBody } from './pushed-body.js';

/** Response headers as undici parses them: lowercase names, arrays for repeated ones. */
export type RawHeaders = Record<string, string | string[] | undefined>;

/** What a lazy Response is made of. */
export interface LazyResponseParts {
  status: number;
  headers: RawHeaders;
  /** Null for null-body statuses and HEAD. */
  body: PushedBody | null;
}

const kParts = Symbol('nimbus.lazyResponse.parts');
const kReal = Symbol('nimbus.lazyResponse.real');
const kHeaders = Symbol('nimbus.lazyResponse.headers');
const kTaken = Symbol('nimbus.lazyResponse.taken');

interface LazyResponse {
  [kParts]: LazyResponseParts;
  [kReal]?: Response;
  [kHeaders]?: Headers;
  [kTaken]?: boolean;
}

const GlobalResponse = globalThis.Response;

function headersOf(self: LazyResponse): Headers {
  let headers = self[kHeaders];
  if (!headers) {
    headers = new Headers();
    const raw = self[kParts].headers;
    for (const key in raw) {
      const value = raw[key];
      if (Array.isArray(value)) for (const v of value) headers.append(key, v);
      else if (value !== undefined) headers.append(key, value);
    }
    self[kHeaders] = headers;
  }
  return headers;
}

function realOf(self: LazyResponse): Response {
  let real = self[kReal];
  if (!real) {
    const { status, body } = self[kParts];
    real = new GlobalResponse(body && !self[kTaken] ? body.toWeb() : null, { status, headers: headersOf(self) });
    self[kReal] = real;
  }
  return real;
}

const prototype: Record<PropertyKey, unknown> = {};
Object.defineProperties(prototype, {
  status: {
    get(this: LazyResponse) {
      return this[kParts].status;
    },
  },
  ok: {
    get(this: LazyResponse) {
      return this[kParts].status >= 200 && this[kParts].status < 300;
    },
  },
  headers: {
    get(this: LazyResponse) {
      return this[kReal]?.headers ?? headersOf(this);
    },
  },
  [Symbol.for('nodejs.util.inspect.custom')]: {
    value(this: LazyResponse) {
      return `Response (lazy) ${this[kParts].status}`;
    },
  },
});
for (const key of Object.getOwnPropertyNames(GlobalResponse.prototype)) {
  if (key === 'constructor' || key in prototype) continue;
  const desc = Object.getOwnPropertyDescriptor(GlobalResponse.prototype, key)!;
  if (typeof desc.value === 'function') {
    Object.defineProperty(prototype, key, {
      value(this: LazyResponse, ...args: unknown[]) {
        return (realOf(this) as unknown as Record<string, (...a: unknown[]) => unknown>)[key]!(...args);
      },
    });
  } else if (desc.get) {
    Object.defineProperty(prototype, key, {
      get(this: LazyResponse) {
        return (realOf(this) as unknown as Record<string, unknown>)[key];
      },
    });
  }
}
// undici's internal slots (read by e.g. `new Response(body, response)` or structured clones).
for (const slot of Object.getOwnPropertySymbols(new GlobalResponse(null))) {
  Object.defineProperty(prototype, slot, {
    get(this: LazyResponse) {
      return (realOf(this) as unknown as Record<symbol, unknown>)[slot];
    },
  });
}
Object.setPrototypeOf(prototype, GlobalResponse.prototype);

/** A Response (`instanceof Response` holds) built from `parts` only as far as it is used. */
export function createLazyResponse(parts: LazyResponseParts): Response {
  const response = Object.create(prototype) as LazyResponse;
  response[kParts] = parts;
  return response as unknown as Response;
}

/**
 * Takes the parts of a lazy Response nobody has read yet, so the caller can write it with Node
 * streams (the body is the caller's from then on); undefined for any other Response. Headers
 * reflect changes made through `response.headers` when it was read.
 */
export function takeLazyResponseParts(response: Response): LazyResponseParts | undefined {
  const self = response as unknown as LazyResponse;
  const parts = self[kParts];
  if (!parts || self[kReal] || self[kTaken]) return undefined;
  self[kTaken] = true;
  const headers = self[kHeaders];
  if (!headers) return parts;
  const raw: RawHeaders = {};
  headers.forEach((value, key) => {
    if (key !== 'set-cookie') raw[key] = value;
  });
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) raw['set-cookie'] = cookies;
  return { ...parts, headers: raw };
}
