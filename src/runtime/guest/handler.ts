import { buildContext, buildEvent, fromLambdaResult, invokeLambda, type LambdaInfo } from './lambda.js';
import { currentRequest } from './logging.js';
import { REQUEST_ID_HEADER } from './protocol.js';
import { type GuestRequest, type GuestResponse, sendError } from './serve.js';
import { sendResponse, toRequest, toResponse } from './web.js';

type Fn = (...args: unknown[]) => unknown;

/** Serves one request through the loaded function. */
export type Handle = (req: GuestRequest, res: GuestResponse) => void;

/** A loaded function: its request handler and the `ctx.waitUntil` work still running. */
export interface LoadedFunction {
  style: 'fetch' | 'lambda';
  handle: Handle;
  /** Settles when every `waitUntil` promise has settled (awaited before a graceful exit). */
  settled(): Promise<void>;
}

/**
 * Picks the handler style from the module's exports: `default` (a fetch function or an object
 * with `fetch`) is web-standard; `handler` (or `default.handler`, a bundled CommonJS module) is
 * Lambda. Throws when there is neither.
 */
export function loadFunction(
  mod: Record<string, unknown>,
  env: Record<string, string>,
  info: LambdaInfo,
): LoadedFunction {
  const pending = new Set<Promise<unknown>>();
  const settled = async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };
  const def = mod.default as Record<string, unknown> | Fn | undefined;
  let fetchFn: Fn | undefined;
  if (typeof def === 'function') fetchFn = def;
  else if (def && typeof def.fetch === 'function') fetchFn = (def.fetch as Fn).bind(def);
  if (fetchFn) {
    const call = fetchFn;
    return { style: 'fetch', settled, handle: (req, res) => serveFetch(call, env, pending, req, res) };
  }
  const lambda = (
    typeof mod.handler === 'function' ? mod.handler : def && typeof def === 'object' ? def.handler : undefined
  ) as Fn | undefined;
  if (typeof lambda === 'function')
    return { style: 'lambda', settled, handle: (req, res) => serveLambda(lambda, info, req, res) };
  throw new Error('Handler not found: module exports neither `default` nor `handler`');
}

let localIds = 0;

/**
 * The platform always sends a request id; a request without one (the guest driven by hand) gets a
 * local one. Not randomUUID: loading node:crypto costs ≈ 15 ms of every cold start.
 */
function requestIdOf(req: GuestRequest): string {
  // From rawHeaders: `req.headers` would build (and keep) a whole header object per request.
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length === REQUEST_ID_HEADER.length && key.toLowerCase() === REQUEST_ID_HEADER && raw[i + 1])
      return raw[i + 1]!;
  }
  return `local-${process.pid}-${++localIds}`;
}

function fail(res: GuestResponse, err: unknown): void {
  // console.error inside the request's context: the stack lands in the logs with its request id.
  console.error(err);
  const message = err instanceof Error ? err.message : String(err);
  sendError(res, 500, 'NIMBUS_ERR_FUNCTION_ERROR', message);
}

function serveFetch(
  fn: Fn,
  env: Record<string, string>,
  pending: Set<Promise<unknown>>,
  req: GuestRequest,
  res: GuestResponse,
): void {
  const requestId = requestIdOf(req);
  currentRequest.run(requestId, async () => {
    const ctx = {
      requestId,
      waitUntil(promise: Promise<unknown>) {
        const p = Promise.resolve(promise).catch((err) => console.error('waitUntil promise rejected:', err));
        pending.add(p);
        p.finally(() => pending.delete(p));
      },
      passThroughOnException() {},
    };
    let response: Response;
    try {
      response = toResponse(await fn(toRequest(req, res), env, ctx));
    } catch (err) {
      return fail(res, err);
    }
    try {
      await sendResponse(res, response);
    } catch (err) {
      // Headers are out: all we can do is cut the stream so the client sees it was incomplete.
      console.error(err);
      res.destroy(err as Error);
    }
  });
}

function serveLambda(fn: Fn, info: LambdaInfo, req: GuestRequest, res: GuestResponse): void {
  const requestId = requestIdOf(req);
  currentRequest.run(requestId, async () => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const event = buildEvent(req, Buffer.concat(chunks), requestId);
      const result = fromLambdaResult(await invokeLambda(fn, event, buildContext(info, req, requestId)));
      result.headers.push('content-length', String(result.body.length));
      res.writeHead(result.status, result.headers);
      res.end(result.body);
    } catch (err) {
      fail(res, err);
    }
  });
}
