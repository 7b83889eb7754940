/**
 * The app-mode watchdog (after openfaas/of-watchdog's http mode): runs the app's command with
 * PORT set to a free loopback port, waits until the app accepts connections, then proxies every
 * request from the Unix socket to it. The platform never talks to the app's port directly. When
 * the app exits, so does the watchdog, with the app's code. Imports only node builtins.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { connect, createServer } from 'node:net';
import { constants } from 'node:os';
import { DEADLINE_HEADER, ENV_KEYS_VAR, ERROR_HEADER } from './protocol.js';
import { failStart, sendError, serve } from './serve.js';

const { NIMBUS_SOCKET: socketPath, NIMBUS_COMMAND: commandJson } = process.env;
const CRASHED = 'NIMBUS_ERR_INSTANCE_CRASHED';

/** A free loopback port: bind port 0, read it, release it (the app binds it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(true)).once('error', () => resolve(false));
    socket.once('close', () => socket.destroy());
    socket.setTimeout(1000, () => socket.destroy());
    socket.once('connect', () => socket.end());
  });
}

// Connection management is per hop: ours to the provider stays keep-alive whatever the app says.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

function withoutHopByHop(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

async function main(): Promise<void> {
  if (!socketPath || !commandJson) failStart('NIMBUS_SOCKET and NIMBUS_COMMAND must be set');
  const argv: string[] = JSON.parse(commandJson);
  if (!Array.isArray(argv) || argv.length === 0) failStart('The app command is empty');
  const port = await freePort();
  const env: Record<string, string | undefined> = { ...process.env, PORT: String(port) };
  for (const key of ['NIMBUS_SOCKET', 'NIMBUS_COMMAND', ENV_KEYS_VAR]) delete env[key];
  // stdout/stderr are inherited: the app's lines reach the provider without a copy through us.
  // fd 3 gets /dev/null, or the app would inherit (and hold open) our readiness pipe.
  const app: ChildProcess = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'inherit', 'inherit', 'ignore'] });
  let exited: string | undefined;
  let stopping = false;
  // The provider signals the whole process group: the app may exit before our drain finishes.
  process.on('SIGTERM', () => {
    stopping = true;
  });
  app.once('error', (err) => failStart(`Cannot run the app command ${JSON.stringify(argv)}: ${err.message}`));
  let listening = false;
  app.once('exit', (code, signal) => {
    exited = code !== null ? `exited with code ${code}` : `was killed by ${signal}`;
    if (!listening && !stopping) failStart(`The app ${exited} before listening on $PORT (${port})`);
    process.exitCode = stopping ? 0 : exitCodeOf(code, signal);
    if (!stopping) process.exit();
  });
  // The provider bounds the wait with its start timeout; here we only watch for an early exit.
  while (!(await canConnect(port))) await new Promise((resolve) => setTimeout(resolve, 15));
  listening = true;

  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  serve({
    socketPath: socketPath!,
    handle(req, res) {
      const headers = { ...req.headers };
      for (const h of ['connection', 'keep-alive', DEADLINE_HEADER]) delete headers[h];
      const upstream = request(
        { host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.statusMessage, withoutHopByHop(answer.rawHeaders));
          answer.pipe(res);
          answer.once('error', () => res.destroy());
        },
      );
      upstream.once('error', (err) => sendError(res, 502, CRASHED, `The app failed to answer: ${err.message}`));
      // A 101 answer hands the connection over to another protocol, which this hop cannot carry:
      // say so now rather than leave the caller waiting for the timeout.
      upstream.once('upgrade', (_answer, socket) => {
        socket.destroy();
        sendError(
          res,
          502,
          CRASHED,
          'The app failed to answer: it switched protocols (101); upgrades such as WebSocket are not supported through Nimbus',
        );
      });
      res.once('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      req.pipe(upstream);
    },
    // A WebSocket (or other) upgrade: the head goes to the app as it came, then bytes both ways.
    upgrade(req, socket, head) {
      const upstream = connect(port, '127.0.0.1');
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      const raw = req.rawHeaders;
      for (let i = 0; i < raw.length; i += 2)
        if (raw[i]!.toLowerCase() !== DEADLINE_HEADER) lines.push(`${raw[i]}: ${raw[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.setNoDelay(true);
      let answered = false;
      upstream.once('data', () => {
        answered = true;
      });
      upstream.on('error', (err) => {
        if (answered) return void socket.destroy();
        const body = JSON.stringify({ error: { code: CRASHED, message: `The app failed to answer: ${err.message}` } });
        socket.end(
          `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
            `${ERROR_HEADER}: ${CRASHED}\r\nconnection: close\r\n\r\n${body}`,
        );
      });
      socket.on('error', () => upstream.destroy());
      upstream.pipe(socket);
      socket.pipe(upstream);
    },
    async beforeExit() {
      stopping = true;
      if (exited) return;
      app.kill('SIGTERM');
      // The provider follows with SIGKILL to the whole group once its grace period is over.
      await new Promise((resolve) => app.once('exit', resolve));
    },
  });
}

void main();
