/**
 * Requests that switch protocols on `/fn/NAME/…` (a WebSocket handshake): routed and leased like
 * any request, then carried as bytes both ways to the instance — app mode only, where the watchdog
 * hands them to the app's port (runtime/guest/watchdog.ts). The slot stays leased while the
 * connection is open, so an instance is never stopped under an open WebSocket and each one counts
 * toward the function's concurrency (as in Knative). The function's timeout bounds the wait for
 * the instance's answer, not the connection's life.
 */
import { type IncomingMessage, type RequestListener, ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { LazyAbort } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { NimbusError, PLATFORM_ERROR_HEADER, toNimbusError } from '../core/errors.js';
import type { InstanceManager, Lease } from '../instances/index.js';
import { REQUEST_ID_HEADER } from '../runtime/types.js';
import { forwardedHeaders } from './forwarded-headers.js';
import { type GatewayTracer, type InvocationRecord, newRecord } from './gateway.js';
import { HOP_BY_HOP_HEADERS } from './hop-by-hop.js';
import type { Resolver } from './resolver.js';

export interface UpgradeOptions {
  resolver: Resolver;
  manager: InstanceManager;
  clock: Clock;
  onInvocation?: (record: InvocationRecord) => void;
  /** With tracing on, each connection is a span (`gateway NAME`, its whole life), as a request is. */
  tracer?: GatewayTracer;
  notFound(name: string, tag: string | undefined): NimbusError;
}

export interface Upgrades {
  /** Carries one upgrade request for function `name` (`path` is what the app sees). */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer, name: string, path: string, tag?: string): Promise<void>;
  /**
   * Ends the upgraded connections of function `name`, or all of them: at shutdown (they would
   * hold the server open for hours) and when the function is deleted (its app must stop serving).
   */
  closeAll(name?: string): void;
  /** Open upgraded connections per function. */
  counts(): Map<string, number>;
}

// What the app never gets from the caller: the hop-by-hop headers but the two an upgrade needs,
// `host` (rebuilt), and the forwarding headers the gateway sets itself.
const KEPT = new Set(['connection', 'upgrade']);
const NOT_FORWARDED = new Set([
  ...HOP_BY_HOP_HEADERS.filter((h) => !KEPT.has(h)),
  'host',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-for',
]);
/** After our FIN, how long a client may keep its half of the connection open. */
const LINGER_MS = 5000;

export function createUpgrades(options: UpgradeOptions): Upgrades {
  const { resolver, manager, clock } = options;
  /** Both ends of every upgraded connection, with their function. */
  const open = new Map<Duplex, string>();
  const perFunction = new Map<string, number>();

  async function handle(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    name: string,
    path: string,
    tag?: string,
  ): Promise<void> {
    const record = newRecord(name);
    const { requestId } = record;
    const started = performance.now();
    const trace = options.tracer?.start(name, req.headers.traceparent as string | undefined);
    if (trace) record.traceId = trace.traceId;
    const abort = new LazyAbort();
    const clientGone = () => abort.abort(new Error('client closed the connection'));
    socket.once('close', clientGone);
    socket.on('error', () => {});
    open.set(socket, name);
    perFunction.set(name, (perFunction.get(name) ?? 0) + 1);
    let lease: Lease | undefined;
    let upstream: Duplex | undefined;
    let cancelTimer: (() => void) | undefined;
    let answered = false;
    try {
      const plan = resolver.resolve(name, tag);
      if (!plan) throw options.notFound(name, tag);
      record.revision = plan.revision;
      const timeoutMs = plan.spec.timeoutMs;
      cancelTimer = clock.setTimer(
        () =>
          abort.abort(
            new NimbusError(
              'NIMBUS_ERR_TIMEOUT',
              `Function ${name} did not answer the upgrade within its timeout of ${timeoutMs / 1000} s`,
            ),
          ),
        timeoutMs,
      );
      lease = await manager.acquire(plan, abort);
      record.cold = lease.cold;
      record.instance = lease.instance.id;
      lease.outlivesTimeout();
      const { tunnel } = lease.instance;
      if (!tunnel)
        throw new NimbusError(
          'NIMBUS_ERR_UPGRADE_UNSUPPORTED',
          `Function ${name} cannot switch protocols: runtime ${plan.spec.kind} answers requests one by one; WebSocket needs runtime app`,
        );
      upstream = await untilAborted(tunnel.call(lease.instance), abort, (late) => late.destroy());
      open.set(upstream, name);
      upstream.on('error', () => {});
      upstream.write(requestHead(req, path, requestId, trace?.traceparent));
      if (head.length > 0) upstream.write(head);
      const first = await firstChunk(upstream, abort);
      cancelTimer();
      cancelTimer = undefined;
      record.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(first.toString('latin1', 0, 16))?.[1] ?? 0);
      answered = true;
      socket.write(first);
      await carry(socket, upstream);
    } catch (err) {
      const error = toNimbusError(abort.aborted ? abort.reason : err);
      record.error = error.code;
      record.status = error.status;
      upstream?.destroy();
      if (!answered && !socket.destroyed) {
        answered = true;
        endAfter(socket, errorResponse(error, requestId));
      }
    } finally {
      cancelTimer?.();
      socket.off('close', clientGone);
      open.delete(socket);
      if (upstream) open.delete(upstream);
      const left = perFunction.get(name)! - 1;
      if (left === 0) perFunction.delete(name);
      else perFunction.set(name, left);
      lease?.release({ recycle: record.error === 'NIMBUS_ERR_TIMEOUT' });
      record.durationMs = performance.now() - started;
      record.egressBytes = (socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0;
      if (trace) options.tracer!.end(trace, record);
      options.onInvocation?.(record);
    }
  }

  return {
    handle,
    counts: () => new Map(perFunction),
    closeAll(name) {
      for (const [stream, fn] of open) if (name === undefined || fn === name) stream.destroy();
    },
  };
}

/** The request as the app gets it over the tunnel: HTTP/1.1, with the gateway's forwarding headers. */
function requestHead(req: IncomingMessage, path: string, requestId: string, traceparent?: string): string {
  const headers = forwardedHeaders(req, requestId, NOT_FORWARDED, traceparent);
  const lines = [`${req.method ?? 'GET'} ${path} HTTP/1.1`];
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Resolves with what `promise` gives unless `abort` fires first; what comes late goes to `discard`. */
function untilAborted<T>(promise: Promise<T>, abort: LazyAbort, discard: (late: T) => void): Promise<T> {
  if (abort.aborted) {
    promise.then(discard, () => {});
    return Promise.reject(abort.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.then(discard, () => {});
      reject(abort.reason);
    };
    abort.addEventListener('abort', onAbort);
    promise.then(
      (value) => {
        abort.removeEventListener('abort', onAbort);
        if (abort.aborted) return;
        resolve(value);
      },
      (err) => {
        abort.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** The instance's first bytes (the start of its answer); the stream is left paused after them. */
function firstChunk(upstream: Duplex, abort: LazyAbort): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const settle = () => {
      upstream.off('data', onData);
      upstream.off('close', onClose);
      upstream.off('error', onError);
      abort.removeEventListener('abort', onAbort);
    };
    const onData = (chunk: Buffer) => {
      upstream.pause();
      settle();
      resolve(chunk);
    };
    const onError = (err: Error) => {
      settle();
      reject(new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `The instance failed before answering: ${err.message}`));
    };
    const onClose = () => onError(new Error('it closed the connection'));
    const onAbort = () => {
      settle();
      reject(abort.reason);
    };
    upstream.on('data', onData);
    upstream.once('close', onClose);
    upstream.once('error', onError);
    abort.addEventListener('abort', onAbort);
  });
}

/** Bytes both ways until both sides are closed; either side's end or failure ends the other. */
function carry(client: Duplex, upstream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0;
    const done = () => {
      if (++closed === 2) resolve();
    };
    client.once('close', () => {
      upstream.destroy();
      done();
    });
    upstream.once('close', () => {
      // Its last bytes are written before our FIN (pipe ended the client on the upstream's end).
      if (!client.destroyed) endAfter(client);
      done();
    });
    upstream.pipe(client);
    client.pipe(upstream);
  });
}

/** Ends `socket` (with `last` written first), destroying it if the peer keeps its half open. */
function endAfter(socket: Duplex, last?: string): void {
  socket.end(last);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  socket.once('close', () => clearTimeout(timer));
}

/** A platform error as a whole HTTP/1.1 response on a raw connection (node:http gave it up). */
function errorResponse(error: NimbusError, requestId: string): string {
  const body = JSON.stringify(error.toJSON());
  return (
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `${PLATFORM_ERROR_HEADER}: ${error.code}\r\n${REQUEST_ID_HEADER}: ${requestId}\r\nconnection: close\r\n\r\n${body}`
  );
}

/**
 * Serves an upgrade request as a plain one, the Upgrade header ignored (which HTTP allows a
 * server): node:http hands every such request to the 'upgrade' listener once there is one.
 */
export function serveWithoutUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  listener: RequestListener,
): void {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    res.detachSocket(socket as Socket);
    endAfter(socket);
  });
  socket.on('error', () => {});
  if (head.length > 0) req.push(head);
  req.push(null);
  listener(req, res);
}
