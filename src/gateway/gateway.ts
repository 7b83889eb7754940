import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type AbortLike, LazyAbort } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { NimbusError, toNimbusError } from '../core/errors.js';
import type { InstanceManager, Lease } from '../instances/index.js';
import { createLazyRequest, type LazyResponseParts, takeLazyResponseParts } from '../runtime/channel/index.js';
import { DEADLINE_HEADER, REQUEST_ID_HEADER } from '../runtime/types.js';
import { BodyLimit } from './body-limit.js';
import { createDeadlines, type Deadline } from './deadlines.js';
import { forwardedHeaders } from './forwarded-headers.js';
import { HOP_BY_HOP_HEADERS } from './hop-by-hop.js';
import { sendPlatformError } from './platform-error.js';
import type { Resolver } from './resolver.js';
import { createUpgrades } from './upgrade.js';

/** One finished invocation, for logs and metrics. */
export interface InvocationRecord {
  requestId: string;
  function: string;
  revision?: string;
  status: number;
  durationMs: number;
  cold: boolean;
  /** The instance that served it, when one did. */
  instance?: string;
  /** Bytes sent to the caller for this response, headers included. */
  egressBytes: number;
  /** Set when the platform made the response. */
  error?: string;
  /** Ms from arrival until an instance slot was asked for, and until one was leased (or that failed). */
  wait?: { fromMs: number; toMs: number };
  /** Set when the request was traced (GatewayOptions.tracer). */
  traceId?: string;
}

/** One traced request: what the function is told, for the gateway's span to be its parent. */
export interface RequestTrace {
  traceId: string;
  /** The `traceparent` header the function gets (the caller's is replaced). */
  traceparent: string;
}

/**
 * Tracing hooks. `start` runs when a request arrives (with the caller's `traceparent`, if any)
 * and `end` once it is finished, with its record. Without a tracer the gateway does no tracing
 * work at all, and a caller's `traceparent` reaches the function unchanged.
 */
export interface GatewayTracer {
  start(name: string, traceparent: string | undefined): RequestTrace;
  end(trace: RequestTrace, record: InvocationRecord): void;
}

export interface GatewayOptions {
  resolver: Resolver;
  manager: InstanceManager;
  clock: Clock;
  /** Largest request body accepted. Default 6 MB (Lambda's synchronous payload limit). */
  maxBodyBytes?: number;
  onInvocation?: (record: InvocationRecord) => void;
  tracer?: GatewayTracer;
}

export interface Gateway {
  /**
   * Serves one request for function `name`; `path` is what the function sees (`/x?y=1`). With
   * `tag` (from `/fn/NAME@TAG/`), the revision the tag names instead of a weighted pick.
   */
  handle(req: IncomingMessage, res: ServerResponse, name: string, path: string, tag?: string): Promise<void>;
  /**
   * Carries a request that switches protocols (WebSocket) to an app-mode instance
   * (gateway/upgrade.ts); the other runtimes answer 501 NIMBUS_ERR_UPGRADE_UNSUPPORTED.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, name: string, path: string, tag?: string): Promise<void>;
  /** Ends the upgraded connections of function `name` (deleted), or all of them (shutdown). */
  closeUpgrades(name?: string): void;
  /** Open upgraded connections per function (a metrics gauge). */
  openUpgrades(): Map<string, number>;
  /** Requests being served now. */
  readonly inFlight: number;
  /** Resolves once no request is being served (for a draining shutdown). */
  idle(): Promise<void>;
}

// The proxy's own business: the connection's hop-by-hop headers, and `host` (rebuilt from the URL).
const HOP_BY_HOP = new Set([...HOP_BY_HOP_HEADERS, 'host']);
// What the instance never gets from the caller: the above, `expect` (node:http answered it), and
// the forwarding headers the gateway sets itself.
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'expect', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-for']);

export function createGateway(options: GatewayOptions): Gateway {
  const { resolver, manager, clock } = options;
  const deadlines = createDeadlines(clock);
  const maxBody = options.maxBodyBytes ?? 6 * 1024 * 1024;
  let inFlight = 0;
  const idleWaiters: (() => void)[] = [];

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    path: string,
    tag?: string,
  ): Promise<void> {
    const record = newRecord(name);
    const { requestId } = record;
    const started = performance.now();
    const trace = options.tracer?.start(name, req.headers.traceparent as string | undefined);
    if (trace) record.traceId = trace.traceId;
    // Keep-alive connections carry one response at a time, so the counter's growth is this response.
    const writtenBefore = req.socket.bytesWritten;
    inFlight++;
    let lease: Lease | undefined;
    const abort = new LazyAbort();
    let deadlineEntry: Deadline | undefined;
    // Made only for a request with a body (a Transform per GET cost ≈ 1 µs).
    let limiter: BodyLimit | undefined;
    const open = openRequestsOf(req.socket);
    open.add(abort);
    try {
      const plan = resolver.resolve(name, tag);
      if (!plan) throw notFound(resolver, name, tag);
      record.revision = plan.revision;
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxBody) throw tooLarge(maxBody);

      const timeoutMs = plan.spec.timeoutMs;
      const deadline = clock.now() + timeoutMs;
      deadlineEntry = deadlines.add(timeoutMs, () => abort.abort(timeoutError(name, timeoutMs)));

      record.wait = { fromMs: performance.now() - started, toMs: 0 };
      lease = await manager.acquire(plan, abort);
      record.wait.toMs = performance.now() - started;
      record.cold = lease.cold;
      record.instance = lease.instance.id;
      if (req.method !== 'GET' && req.method !== 'HEAD') limiter = new BodyLimit(maxBody);
      const request = toRequest(req, path, requestId, deadline, limiter, abort, trace?.traceparent);
      const response = await lease.instance.fetch(request, { signal: abort });
      record.status = response.status;
      const parts = takeLazyResponseParts(response);
      if (parts) await writeParts(res, parts, requestId);
      else await writeResponse(res, response, abort, requestId);
    } catch (err) {
      if (record.wait && record.wait.toMs === 0) record.wait.toMs = performance.now() - started;
      const reason = abort.aborted ? abort.reason : err;
      const error = limiter?.exceeded ? tooLarge(maxBody) : toNimbusError(reason);
      record.error = error.code;
      record.status = error.status;
      if (!res.headersSent) {
        res.setHeader(REQUEST_ID_HEADER, requestId);
        sendPlatformError(res, error);
      } else res.destroy(error);
    } finally {
      if (deadlineEntry) deadlines.cancel(deadlineEntry);
      open.delete(abort);
      // A timed-out instance may be stuck in a loop: stop it once its other requests finish.
      lease?.release({ recycle: record.error === 'NIMBUS_ERR_TIMEOUT' });
      if (--inFlight === 0 && idleWaiters.length > 0) for (const r of idleWaiters.splice(0)) r();
      record.durationMs = performance.now() - started;
      record.egressBytes = req.socket.bytesWritten - writtenBefore;
      if (trace) options.tracer!.end(trace, record);
      options.onInvocation?.(record);
    }
  }

  const upgrades = createUpgrades({
    resolver,
    manager,
    clock,
    onInvocation: options.onInvocation,
    tracer: options.tracer,
    notFound: (name, tag) => notFound(resolver, name, tag),
  });

  return {
    handle,
    upgrade: upgrades.handle,
    closeUpgrades: upgrades.closeAll,
    openUpgrades: upgrades.counts,
    get inFlight() {
      return inFlight;
    },
    idle() {
      return inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}

const kOpenRequests = Symbol('nimbus.openRequests');

/**
 * The requests being served on a client connection, aborted if it closes first. One 'close'
 * listener per connection rather than an on/off pair per request (keep-alive clients send many).
 */
function openRequestsOf(socket: Socket & { [kOpenRequests]?: Set<LazyAbort> }): Set<LazyAbort> {
  let open = socket[kOpenRequests];
  if (!open) {
    const requests = new Set<LazyAbort>();
    socket.once('close', () => {
      for (const request of requests) request.abort(new Error('client closed the connection'));
    });
    socket[kOpenRequests] = requests;
    open = requests;
  }
  return open;
}

// Hop-by-hop headers a lazy response may carry (the channel drops connection and transfer-encoding).
const DROPPED = ['host', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection'];

/**
 * The Request the instance gets: a lazy one (runtime/channel), so a provider that moves Node
 * streams never pays for a web Request and stream, and any other sees a complete Request.
 */
function toRequest(
  req: IncomingMessage,
  path: string,
  requestId: string,
  deadline: number,
  limiter: BodyLimit | undefined,
  abort: LazyAbort,
  traceparent?: string,
): Request {
  const headers = forwardedHeaders(req, requestId, NOT_FORWARDED, traceparent);
  headers.push(DEADLINE_HEADER, String(deadline));
  return createLazyRequest({
    method: req.method ?? 'GET',
    host: headers[1]!,
    path,
    headers,
    body: limiter ? req.pipe(limiter) : null,
    wire: true,
    // Made only if the function's code reads request.signal.
    signal: () => abort.signal,
  });
}

/**
 * Writes a lazy Response with Node streams: headers and a body that is complete by now in one
 * write (res.end), else each chunk as it comes (the first one is never held back), honouring the
 * client's back-pressure. An abort reaches the body as an error through the channel.
 */
function writeParts(
  res: ServerResponse,
  { status, headers, body }: LazyResponseParts,
  requestId: string,
): Promise<void> {
  for (const key of DROPPED) if (headers[key] !== undefined) delete headers[key];
  // In the object given to writeHead, not by setHeader beforehand: a response with no headers set
  // yet takes node:http's fast path (the function's own value, if it sent one, wins as before).
  headers[REQUEST_ID_HEADER] ??= requestId;
  if (body?.complete) {
    // A body that is all here goes with its length, as from a plain server: no chunked framing
    // for node:http to write nor for the client to parse (a HEAD or null-body answer has no body).
    const whole = body.takeAll();
    headers['content-length'] ??= String(whole.length);
    res.writeHead(status, headers as Record<string, string | string[]>);
    res.end(whole);
    return Promise.resolve();
  }
  res.writeHead(status, headers as Record<string, string | string[]>);
  if (!body) {
    res.end();
    return Promise.resolve();
  }
  return new Promise<void>((resolve, reject) => {
    const resume = () => body.resume();
    body.attach({
      write(chunk) {
        if (res.write(chunk)) return true;
        res.once('drain', resume);
        return false;
      },
      end() {
        res.end();
        resolve();
      },
      error(err) {
        res.off('drain', resume);
        reject(err);
      },
    });
  });
}

async function writeResponse(
  res: ServerResponse,
  response: Response,
  signal: AbortLike,
  requestId: string,
): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, key) => {
    if (key !== 'set-cookie' && !HOP_BY_HOP.has(key)) headers[key] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  headers[REQUEST_ID_HEADER] ??= requestId;
  res.writeHead(response.status, headers);
  if (!response.body) return void res.end();
  // Stream chunk by chunk, honouring the client's back-pressure.
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await waitDrain(res, signal);
    }
    res.end();
  } finally {
    reader.releaseLock();
  }
}

function waitDrain(res: ServerResponse, signal: AbortLike): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', abort);
      resolve();
    };
    const abort = () => {
      done();
      reject(signal.reason);
    };
    res.once('drain', done);
    res.once('close', done);
    signal.addEventListener('abort', abort, { once: true });
  });
}

function notFound(resolver: Resolver, name: string, tag: string | undefined): NimbusError {
  if (tag !== undefined && resolver.resolve(name))
    return new NimbusError('NIMBUS_ERR_REVISION_NOT_FOUND', `Function ${name} has no tag or revision ${tag}`);
  return new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', `Function not found: ${name}`);
}

function tooLarge(max: number): NimbusError {
  return new NimbusError('NIMBUS_ERR_PAYLOAD_TOO_LARGE', `Request body is larger than the limit of ${max} bytes`);
}

function timeoutError(name: string, ms: number): NimbusError {
  return new NimbusError('NIMBUS_ERR_TIMEOUT', `Function ${name} did not answer within its timeout of ${ms / 1000} s`);
}

/** The record of one request, filled in as it is served (a fresh request id, nothing known yet). */
export function newRecord(name: string): InvocationRecord {
  return { requestId: randomUUID(), function: name, status: 0, durationMs: 0, cold: false, egressBytes: 0 };
}
