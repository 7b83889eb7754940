import { closeSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { ERROR_HEADER, READY_FD, type ReadyMessage } from './protocol.js';

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
export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
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
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Awaited after in-flight requests finished, before exit(0) (e.g. waitUntil promises, the app). */
  beforeExit?: () => Promise<void>;
}

/**
 * Listens on the Unix socket, signals readiness once listening, and drains on SIGTERM: stop
 * accepting, close kept-alive connections as their responses end, wait for in-flight requests.
 */
export function serve(options: ServeOptions): void {
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | undefined;
  const server = createServer(
    // The gateway enforces timeouts; the guest must not cut long streams on its own.
    { requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 0, noDelay: true },
    (req, res) => {
      inFlight++;
      if (draining) res.shouldKeepAlive = false;
      res.once('close', () => {
        if (--inFlight === 0) idle?.();
      });
      options.handle(req, res);
    },
  );
  server.on('clientError', (_err, socket) => socket.destroy());
  try {
    unlinkSync(options.socketPath);
  } catch {
    // No stale socket to remove.
  }
  server.once('error', (err) => failStart(`Cannot listen on ${options.socketPath}: ${err.message}`));
  server.listen(options.socketPath, () => signalReady({ ready: true }));

  process.once('SIGTERM', async () => {
    draining = true;
    server.close();
    server.closeIdleConnections();
    if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
    await options.beforeExit?.();
    process.exit(0);
  });
}
