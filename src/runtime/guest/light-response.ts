/**
 * A lighter global Response for functions (after @hono/node-server's). In Node 20,
 * `new Response('hello')` builds a web ReadableStream (made transferable) that the guest never
 * reads: it writes the string or bytes as they are. That stream was ≈ 20% of a hello function's
 * guest CPU (bench/profile-guest.ts). This Response keeps a string, bytes or no body with a plain
 * `{ status, headers }` init as given, and builds the real Response the first time anything but
 * `status` / `ok` is used. It is `instanceof` the real Response, every real Response is
 * `instanceof` it, and anything it cannot keep as is (another body or init, a value the real
 * constructor would refuse) makes the real one at once, so errors are thrown where they were.
 */
const GlobalResponse = globalThis.Response;
type ResponseBody = ConstructorParameters<typeof Response>[0];
const kParts = Symbol('nimbus.lightResponse.parts');
const kReal = Symbol('nimbus.lightResponse.real');
// RFC 9110 token, and values the Headers class would keep unchanged (no surrounding whitespace).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PLAIN_VALUE = /^(?:[^\0\r\n\t ](?:[^\0\r\n]*[^\0\r\n\t ])?)?$/;
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** What a light Response is sent as: headers flat, lowercase and sorted, as Headers iterates them. */
export interface LightParts {
  status: number;
  headers: string[];
  body: string | Uint8Array | null;
}

interface Kept extends LightParts {
  /** The constructor's arguments, to build the real Response from. */
  args: [unknown, unknown];
}

interface Light {
  [kParts]?: Kept;
  [kReal]?: Response;
}

const isPlain = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/** The parts of `new Response(body, init)` when they can be kept as given; undefined otherwise. */
function keep(body: unknown, init: unknown): Kept | undefined {
  let type: string | undefined;
  if (typeof body === 'string') type = 'text/plain;charset=UTF-8';
  else if (body !== undefined && body !== null && !(body instanceof Uint8Array)) return undefined;
  let status = 200;
  let given: Record<string, unknown> | undefined;
  if (init !== undefined) {
    if (!isPlain(init)) return undefined;
    for (const key in init) if (key !== 'status' && key !== 'headers') return undefined;
    if (init.status !== undefined) {
      const s = init.status;
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 200 || s > 599) return undefined;
      status = s;
    }
    if (init.headers !== undefined) {
      if (!isPlain(init.headers)) return undefined;
      given = init.headers;
    }
  }
  if (body != null && NULL_BODY.has(status)) return undefined;
  const headers: string[] = [];
  if (given) {
    const names = Object.keys(given);
    const lower = names.map((n) => n.toLowerCase());
    if (new Set(lower).size !== lower.length) return undefined;
    const order = lower.map((_, i) => i).sort((a, b) => (lower[a]! < lower[b]! ? -1 : 1));
    for (const i of order) {
      const value = given[names[i]!];
      if (typeof value !== 'string' || !TOKEN.test(names[i]!) || !PLAIN_VALUE.test(value)) return undefined;
      headers.push(lower[i]!, value);
    }
  }
  if (type && !headers.includes('content-type')) {
    let at = 0;
    while (at < headers.length && headers[at]! < 'content-type') at += 2;
    headers.splice(at, 0, 'content-type', type);
  }
  return { status, headers, body: (body ?? null) as string | Uint8Array | null, args: [body, init] };
}

function realOf(self: Light): Response {
  let real = self[kReal];
  if (!real) {
    const [body, init] = self[kParts]!.args;
    real = new GlobalResponse(body as ResponseBody, init as ResponseInit);
    self[kReal] = real;
    self[kParts] = undefined;
  }
  return real;
}

/** The Response class functions see (installed as the global by installLightResponse). */
export class LightResponse {
  constructor(body?: unknown, init?: unknown) {
    const parts = keep(body, init);
    if (parts) (this as Light)[kParts] = parts;
    else (this as Light)[kReal] = new GlobalResponse(body as ResponseBody, init as ResponseInit);
  }
}

// Real Responses (fetch's, Response.json()'s) are Responses too; a subclass checks as usual
// (`this` is the class `instanceof` was asked about: LightResponse itself or a subclass).
Object.defineProperty(LightResponse, Symbol.hasInstance, {
  value(this: unknown, value: unknown): boolean {
    if (this === LightResponse) return value instanceof GlobalResponse;
    return Function.prototype[Symbol.hasInstance].call(this, value);
  },
});

const prototype = LightResponse.prototype as unknown as Record<PropertyKey, unknown>;
Object.defineProperties(prototype, {
  status: {
    get(this: Light) {
      return this[kParts]?.status ?? realOf(this).status;
    },
  },
  ok: {
    get(this: Light) {
      const status = this[kParts]?.status ?? realOf(this).status;
      return status >= 200 && status < 300;
    },
  },
});
for (const key of Object.getOwnPropertyNames(GlobalResponse.prototype)) {
  if (key === 'constructor' || key in prototype) continue;
  const desc = Object.getOwnPropertyDescriptor(GlobalResponse.prototype, key)!;
  if (typeof desc.value === 'function')
    Object.defineProperty(prototype, key, {
      value(this: Light, ...args: unknown[]) {
        return (realOf(this) as unknown as Record<string, (...a: unknown[]) => unknown>)[key]!(...args);
      },
    });
  else if (desc.get)
    Object.defineProperty(prototype, key, {
      get(this: Light) {
        return (realOf(this) as unknown as Record<string, unknown>)[key];
      },
    });
}
// undici's internal slots (read by undici itself, e.g. web.ts's knownBody): the real Response's.
for (const slot of Object.getOwnPropertySymbols(new GlobalResponse(null)))
  Object.defineProperty(prototype, slot, {
    get(this: Light) {
      return (realOf(this) as unknown as Record<symbol, unknown>)[slot];
    },
  });
Object.setPrototypeOf(prototype, GlobalResponse.prototype);
// Response.json(), .error(), .redirect() stay the real ones (they return real Responses).
Object.setPrototypeOf(LightResponse, GlobalResponse);
// What a function sees is called Response (`Response.name`, `response.constructor.name`).
Object.defineProperty(LightResponse, 'name', { value: 'Response' });

/** Makes LightResponse the global Response (before the function's module is imported). */
export function installLightResponse(): void {
  globalThis.Response = LightResponse as unknown as typeof Response;
}

/** The parts of a light Response nothing has turned into a real one; undefined for any other. */
export function lightParts(response: Response): LightParts | undefined {
  return (response as unknown as Light)[kParts];
}
