/**
 * A pool cell ("stem cell", as Fission and OpenWhisk call it): a guest started before any
 * function is known (runtime/process/cell-pool.ts). It pays now for what every function start
 * pays for — Node's boot, the guest's own modules, undici behind Request/Response (≈ 48 ms the
 * first time a function touches them), the ESM loader's dynamic-import path — then reports
 * `{"ready":true,"cell":true}` on READY_FD and waits for one SpecialiseMessage on stdin. That
 * message replaces its whole environment and working directory; from there it is a function
 * instance exactly like function.ts (run-function.ts), and reports ready a second time.
 */
import { rmSync, writeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveFramed } from './framed-server.js';
import { FrameDecoder, FrameType, FrameWriter, PREFACE } from './framing.js';
import { loadFunction } from './handler.js';
import { READY_FD, REQUEST_ID_HEADER, type SpecialiseMessage } from './protocol.js';
import { runFunction } from './run-function.js';
import { failStart } from './serve.js';

/** Loads and runs once what a function's first request would otherwise load. */
async function warm(): Promise<void> {
  const request = new Request('http://cell.invalid/', { method: 'POST', body: 'x', headers: { a: 'b' } });
  await request.text();
  const response = new Response(new ReadableStream({ start: (c) => c.close() }), { headers: request.headers });
  await response.arrayBuffer();
  await Response.json({}).json();
  new URL('http://cell.invalid/?a=b').searchParams.get('a');
  new TextEncoder().encode('x');
  // The dynamic import of a file: URL (resolve, read, link, evaluate): the function's own import.
  await import(new URL('./cell-warm.mjs', import.meta.url).href).catch(() => {});
  await warmServing().catch(() => {});
}

/**
 * One request with a body through the serving path a function's first request takes (framed
 * server, handler, Request/Response conversion), over a socket of the cell's own in its private
 * /tmp: that first request is then as fast as the next ones.
 */
async function warmServing(): Promise<void> {
  const fn = loadFunction(
    { default: async (req: Request) => new Response(await req.text()) },
    {},
    {
      functionName: 'cell',
      functionVersion: 'r0',
      instance: 'cell',
      memoryMb: 0,
      timeoutMs: 1000,
    },
  );
  const path = join(tmpdir(), `.nimbus-cell-${process.pid}.sock`);
  rmSync(path, { force: true });
  const server = createServer((socket) => socket.once('data', (first) => serveFramed(socket, first, fn.handle)));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const client = connect(path);
  try {
    await new Promise<void>((resolve, reject) => {
      const decoder = new FrameDecoder((type) => {
        if (type === FrameType.ResponseEnd || type === FrameType.Error) resolve();
      });
      client.on('data', (chunk: Buffer) => decoder.push(chunk));
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed')));
      const writer = new FrameWriter(client);
      writer.raw(PREFACE);
      writer.frame(
        FrameType.RequestHead,
        1,
        JSON.stringify(['POST', '/', 1, ['host', 'cell', REQUEST_ID_HEADER, 'warm']]),
      );
      writer.frame(FrameType.RequestData, 1, Buffer.from('warm'));
      writer.frame(FrameType.RequestEnd, 1);
    });
  } finally {
    client.destroy();
    server.close();
    rmSync(path, { force: true });
  }
}

/** The first line of stdin; the host closes stdin after it. */
function readMessage(): Promise<SpecialiseMessage> {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl === -1) return;
      process.stdin.destroy();
      try {
        resolve(JSON.parse(text.slice(0, nl)) as SpecialiseMessage);
      } catch (err) {
        reject(err);
      }
    });
    process.stdin.once('end', () => reject(new Error('stdin closed before the specialise message')));
  });
}

async function main(): Promise<void> {
  await warm();
  writeSync(READY_FD, `${JSON.stringify({ ready: true, cell: true })}\n`);
  let message: SpecialiseMessage;
  try {
    message = await readMessage();
  } catch (err) {
    failStart(`The pool cell got no function: ${(err as Error).message}`);
  }
  // The cell's own environment is not the function's: replace it whole. PWD is what bubblewrap's
  // --chdir sets in a spawned instance: kept (for the new directory) when the cell got one too.
  const pwd = 'PWD' in process.env;
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, message.env);
  process.chdir(message.cwd);
  if (pwd) process.env.PWD = message.cwd;
  await runFunction();
}

void main();
