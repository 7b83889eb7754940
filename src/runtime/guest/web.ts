import { createLazyRequest } from './lazy-request.js';
import { lightParts } from './light-response.js';
import { DEADLINE_HEADER } from './protocol.js';
import type { GuestRequest, GuestResponse } from './serve.js';

const HIDDEN = new Set([DEADLINE_HEADER, 'connection', 'keep-alive']);

/**
 * Turns the platform's request into the web-standard Request the function sees: a lazy one
 * (lazy-request.ts), so a handler that reads only the URL and headers, or the body once, never
 * pays for a complete Request and a web stream.
 */
export function toRequest(req: GuestRequest, res: GuestResponse): Request {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  // The first `host`, as node:http's req.headers has it (read here: req.headers is built on use).
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    // The deadline and our hop's connection headers are the platform's business, not the function's.
    if (HIDDEN.has(key)) continue;
    if (host === undefined && key === 'host') host = raw[i + 1];
    headers.push(raw[i]!, raw[i + 1]!);
  }
  const method = req.method ?? 'GET';
  // `request.signal` aborts when the platform drops the request. Made on first use only: an
  // AbortController per request (plus the Request following it) cost ~6% of the guest's CPU.
  let controller: AbortController | undefined;
  const signal = () => {
    if (!controller) {
      const c = new AbortController();
      controller = c;
      const abort = () => c.abort(new Error('The client closed the connection'));
      if (res.closed && !res.writableFinished) abort();
      else res.once('close', () => !res.writableFinished && abort());
    }
    return controller.signal;
  };
  return createLazyRequest({
    method,
    host: host ?? 'localhost',
    path: req.url ?? '/',
    headers,
    body: method !== 'GET' && method !== 'HEAD' ? req : null,
    signal,
  });
}

/** Anything a handler may return: a Response, or a value turned into one. */
export function toResponse(value: unknown): Response {
  if (value instanceof Response) return value;
  if (typeof value === 'string')
    return new Response(value, { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  return Response.json(value ?? null);
}

// undici keeps what a Response was made from in a symbol-keyed slot (`state.body.source`): a
// string or bytes for `new Response('x')` / `Response.json()`, null for a stream. Found by name
// and shape-checked on every use; when it is missing (another Node version) the stream is read.
const STATE = Object.getOwnPropertySymbols(new Response('')).find((s) => s.description === 'state');

/** The bytes a Response was made from, when they are known without reading its stream. */
function knownBody(response: Response): string | Uint8Array | undefined {
  if (!STATE || response.bodyUsed) return undefined;
  const body = (response as unknown as Record<symbol, { body?: { source?: unknown; stream?: ReadableStream } }>)[STATE]
    ?.body;
  const source = body?.source;
  if (!body?.stream || body.stream.locked) return undefined;
  if (typeof source === 'string' || source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  return undefined;
}

/**
 * Writes a Response to the platform. A body made from a string or bytes goes out with the headers
 * in one write; a stream is passed on chunk by chunk with back-pressure (never buffered whole).
 */
export async function sendResponse(res: GuestResponse, response: Response): Promise<void> {
  const light = lightParts(response);
  if (light) {
    res.writeHead(light.status, undefined, light.headers);
    res.end(light.body ?? undefined);
    return;
  }
  const headers: string[] = [];
  // Iterating Headers yields each set-cookie on its own, so duplicates survive the flat list.
  for (const [key, value] of response.headers) headers.push(key, value);
  const body = response.body === null ? null : knownBody(response);
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (body !== undefined) {
    res.end(body ?? undefined);
    return;
  }
  const reader = response.body!.getReader();
  const onClose = () => void reader.cancel().catch(() => {});
  res.once('close', onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await drained(res);
    }
    res.end();
  } finally {
    res.off('close', onClose);
  }
}

function drained(res: GuestResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
