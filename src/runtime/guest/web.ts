import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { DEADLINE_HEADER } from './protocol.js';

const HIDDEN = new Set([DEADLINE_HEADER, 'connection', 'keep-alive']);

/** Turns the platform's request into the web-standard Request the function sees. */
export function toRequest(req: IncomingMessage, res: ServerResponse): Request {
  const headers: [string, string][] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    // The deadline and our hop's connection headers are the platform's business, not the function's.
    if (HIDDEN.has(raw[i]!.toLowerCase())) continue;
    headers.push([raw[i]!, raw[i + 1]!]);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null,
    // Node's Request needs `duplex: 'half'` for a streamed body.
    duplex: 'half',
  } as RequestInit);
  // `request.signal` aborts when the platform drops the request. Made on first use only: an
  // AbortController per request (plus the Request following it) cost ~6% of the guest's CPU.
  let controller: AbortController | undefined;
  Object.defineProperty(request, 'signal', {
    get() {
      if (!controller) {
        const c = new AbortController();
        controller = c;
        const abort = () => c.abort(new Error('The client closed the connection'));
        if (res.closed && !res.writableFinished) abort();
        else res.once('close', () => !res.writableFinished && abort());
      }
      return controller.signal;
    },
  });
  return request;
}

/** Anything a handler may return: a Response, or a value turned into one. */
export function toResponse(value: unknown): Response {
  if (value instanceof Response) return value;
  if (typeof value === 'string')
    return new Response(value, { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  return Response.json(value ?? null);
}

/** Writes a Response to the platform, streaming its body chunk by chunk with back-pressure. */
export async function sendResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: string[] = [];
  // Iterating Headers yields each set-cookie on its own, so duplicates survive the flat list.
  for (const [key, value] of response.headers) headers.push(key, value);
  res.writeHead(response.status, response.statusText || undefined, headers);
  const body = response.body;
  if (!body) {
    res.end();
    return;
  }
  const reader = body.getReader();
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

function drained(res: ServerResponse): Promise<void> {
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
