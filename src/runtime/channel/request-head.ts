import { Readable } from 'node:stream';
import { takeLazyRequestParts } from '../guest/lazy-request.js';

// Hop-by-hop or unsupported on the instance hop; `host` is always sent first, from the URL.
const SKIP = new Set(['connection', 'keep-alive', 'upgrade', 'transfer-encoding', 'expect', 'host']);

/** What either instance channel (framed or HTTP) sends for one Request. */
export interface RequestHead {
  method: string;
  /** Path and query. */
  path: string;
  /** Flat `[name, value, …]`, starting with `host`. */
  headers: string[];
  body: Readable | null;
}

/** The parts of a Request: a lazy one (from the gateway) gives its Node body stream as is. */
export function requestHead(request: Request): RequestHead {
  const lazy = takeLazyRequestParts(request);
  if (lazy?.wire) return { method: lazy.method, path: lazy.path, headers: lazy.headers, body: lazy.body };
  if (lazy) {
    const headers: string[] = ['host', lazy.host];
    const raw = lazy.headers;
    for (let i = 0; i < raw.length; i += 2) if (!SKIP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
    return { method: lazy.method, path: lazy.path, headers, body: lazy.body };
  }
  const url = request.url;
  // Cheaper than new URL(): these URLs are always absolute `http://host/path…`.
  const hostStart = url.indexOf('//') + 2;
  const slash = url.indexOf('/', hostStart);
  const headers: string[] = ['host', url.slice(hostStart, slash === -1 ? undefined : slash)];
  for (const [key, value] of request.headers) if (!SKIP.has(key)) headers.push(key, value);
  return {
    method: request.method,
    path: slash === -1 ? '/' : url.slice(slash),
    headers,
    body: request.body ? Readable.fromWeb(request.body as import('node:stream/web').ReadableStream) : null,
  };
}
