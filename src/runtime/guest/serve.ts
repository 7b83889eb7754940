import { closeSync, unlinkSync, writeSync } from 'node:fs';
import {
  createServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { type FramedConnection, serveFramed } from './framed-server.js';
import { PREFACE } from './framing.js';
import { ERROR_HEADER, READY_FD, type ReadyMessage } from './protocol.js';

/**
 * A request as the guest serves it: node:http's IncomingMessage, or a stream of the framed
 * channel (framed-server.ts) with the same shape.
 */
export interface GuestRequest extends Readable {
  readonly method?: string;
  readonly url?: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly httpVersion: string;
}

/** The answer to a GuestRequest: node:http's ServerResponse, or a framed stream's. */
export interface GuestResponse extends Writable {
  readonly headersSent: boolean;
  writeHead(
    status: number,
    textOrHeaders?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this;
}

/** Writes the readiness line on READY_FD. Ignored when the fd is not open (guest run by hand). */
export function signalReady(message: ReadyMessage): void {
  try {
    writeSync(READY_FD, `${JSON.stringify(message)}\n`);
    closeSync(READY_FD);
  } catch {
    // No readiness pipe: nothing to tell.
  }
}

/** Reports a start failure on the readiness fd and on stderr (so it lands in the logs), then exits 1. */
export function failStart(error: string): never {
  process.stderr.write(`${error}\n`);
  signalReady({ ready: false, error });
  process.exit(1);
}

/** Answers a platform-made error in the catalogue's JSON shape, tagged with `x-nimbus-error`. */
export function sendError(res: GuestResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy(new Error(message));
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    [ERROR_HEADER]: code,
  });
  res.end(body);
}

/** How the guest serves: the request handler and what to do before exiting on SIGTERM. */
export interface ServeOptions {
  socketPath: string;
  handle: (req: GuestRequest, res: GuestResponse) => void;
  /** Awaited after in-flight requests finished, before exit(0) (e.g. waitUntil promises, the app). */
  beforeExit?: () => Promise<void>;
  /** Milliseconds the function's init took (import + top-level code), reported on the readiness line. */
  initMs?: number;
  /**
   * A request that switches protocols (plain HTTP connections only: the gateway opens one per
   * upgrade). Without it such a connection is closed. Upgraded connections are ended at SIGTERM
   * once in-flight requests are done (the gateway keeps the instance while they are open).
   */
  upgrade?: (req: GuestRequest, socket: Socket, head: Buffer) => void;
}

/**
 * Listens on the Unix socket and serves both protocols on it: a connection that starts with the
 * framed channel's preface (first byte 0, which starts no HTTP request) is served by
 * framed-server.ts, any other by node:http. Signals readiness once listening, and drains on
 * SIGTERM: stop accepting, close idle HTTP connections (and kept-alive ones as their responses
 * end), wait for in-flight requests of either kind.
 */
export function serve(options: ServeOptions): void {
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | undefined;
  const handle = (req: GuestRequest, res: GuestResponse) => {
    inFlight++;
    if (draining && res instanceof ServerResponse) res.shouldKeepAlive = false;
    res.once('close', () => {
      if (--inFlight === 0) idle?.();
    });
    options.handle(req, res);
  };
  // The gateway enforces timeouts; the guest must not cut long streams on its own.
  const http = createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 0, noDelay: true }, handle);
  http.on('clientError', (_err, socket) => socket.destroy());
  const upgraded = new Set<Socket>();
  http.on('upgrade', (req: GuestRequest, socket: Socket, head: Buffer) => {
    if (!options.upgrade || draining) return void socket.destroy();
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    options.upgrade(req, socket, head);
  });
  const framed = new Set<FramedConnection>();
  const server = createNetServer((socket: Socket) => {
    socket.once('data', (first: Buffer) => {
      if (first[0] === PREFACE[0]) {
        const connection = serveFramed(socket, first, handle);
        framed.add(connection);
        socket.once('close', () => framed.delete(connection));
        return;
      }
      // Hand the connection to node:http with its first bytes put back (httpolyglot's way).
      socket.pause();
      socket.unshift(first);
      http.emit('connection', socket);
      socket.resume();
    });
    socket.on('error', () => socket.destroy());
  });
  try {
    unlinkSync(options.socketPath);
  } catch {
    // No stale socket to remove.
  }
  server.once('error', (err) => failStart(`Cannot listen on ${options.socketPath}: ${err.message}`));
  server.listen(options.socketPath, () =>
    signalReady(options.initMs === undefined ? { ready: true } : { ready: true, initMs: options.initMs }),
  );

  process.once('SIGTERM', async () => {
    draining = true;
    server.close();
    http.closeIdleConnections();
    if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
    await Promise.all([...framed].map((connection) => connection.close()));
    for (const socket of upgraded) socket.destroy();
    await options.beforeExit?.();
    process.exit(0);
  });
}
