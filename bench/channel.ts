/**
 * What it measures: the host → instance channel of the process provider. One guest instance
 * (dist/guest/function.mjs, a 1 KB answer), 16 requests in flight, over its Unix socket:
 *   A  undici.fetch(url, { dispatcher: pool })           — undici's own Request/Response
 *   B  pool.request() + new Response(Readable.toWeb(body)) — what process/channel.ts does
 *   C  pool.request() + new Response(asyncIterable body)  — Node 20 Response accepts iterables
 *   E  pool.dispatch() with a handler feeding a web ReadableStream
 *   D  pool.request() + body.text()                        — no Response at all (upper bound)
 *   P  instance.fetch() through createProcessRuntime      — the provider as shipped
 *   Z  D against a bare node:http server on a Unix socket — the guest's own cost, by difference
 * Run: npm run build && node --import tsx bench/channel.ts [requests]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Pool, fetch as undiciFetch } from 'undici';
import { createProcessRuntime } from '../src/runtime/index.js';

const TOTAL = Number(process.argv[2] ?? 20_000);
const IN_FLIGHT = 16;
const dir = tmpdir();
writeFileSync(
  join(dir, 'nimbus-bench-1k.mjs'),
  `const body = 'x'.repeat(1024);\nexport default () => new Response(body);\n`,
);

const runtime = createProcessRuntime();
const instance = await runtime.start({
  id: 'bench',
  function: 'bench',
  revision: 'r1',
  kind: 'node',
  artifactDir: dir,
  entry: 'nimbus-bench-1k.mjs',
  env: {},
  memoryMb: 256,
  timeoutMs: 30_000,
});
// The provider keeps its socket private: find it from the guest's environment.
const environ = readFileSync(`/proc/${instance.pid}/environ`, 'utf8');
const socketPath = /NIMBUS_SOCKET=([^\0]+)/.exec(environ)![1]!;
const pool = new Pool('http://localhost', { connect: { socketPath }, keepAliveTimeout: 60_000 });
// Calibration: the same 1 KB answer from a bare node:http server (no guest framework).
const bareSocket = join(dir, `nimbus-bench-bare-${process.pid}.sock`);
const bare = spawn(
  process.execPath,
  [
    '-e',
    `require('http').createServer((q, s) => s.end('x'.repeat(1024))).listen(${JSON.stringify(bareSocket)}, () => console.log('up'))`,
  ],
  {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
await once(bare.stdout!, 'data');
const barePool = new Pool('http://localhost', { connect: { socketPath: bareSocket }, keepAliveTimeout: 60_000 });
const request = () => pool.request({ path: '/', method: 'GET', headers: { host: 'fn.test' } });

const variants: Record<string, () => Promise<string>> = {
  'A undici.fetch + dispatcher': async () => (await undiciFetch('http://fn.test/', { dispatcher: pool })).text(),
  'B request + Readable.toWeb': async () => {
    const r = await request();
    return new Response(Readable.toWeb(r.body) as ReadableStream, { status: r.statusCode }).text();
  },
  'C request + iterable body': async () => {
    const r = await request();
    return new Response(r.body as unknown as ReadableStream, { status: r.statusCode }).text();
  },
  'E dispatch → web stream': async () => (await dispatchFetch()).text(),
  'D request + body.text()': async () => (await request()).body.text(),
  'P instance.fetch (provider)': async () => (await instance.fetch(new Request('http://fn.test/'))).text(),
  'Z D against bare node:http': async () => (await barePool.request({ path: '/', method: 'GET' })).body.text(),
};

// E: a raw dispatch handler feeding a web ReadableStream directly (no Node stream in between).
function dispatchFetch(): Promise<Response> {
  return new Promise((resolve, reject) => {
    let sink!: ReadableStreamDefaultController<Uint8Array>;
    let ctl: { pause(): void; resume(): void; abort(r: Error): void } | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        sink = c;
      },
      pull: () => ctl?.resume(),
      cancel: (r) => ctl?.abort(r),
    });
    pool.dispatch(
      { path: '/', method: 'GET', headers: { host: 'fn.test' } },
      {
        onRequestStart: (c) => {
          ctl = c;
        },
        onResponseStart: (_c, status, headers) => {
          const out = new Headers();
          for (const k in headers) {
            const v = headers[k];
            if (Array.isArray(v)) for (const x of v) out.append(k, x);
            else if (v !== undefined) out.append(k, v);
          }
          resolve(new Response(body, { status, headers: out }));
        },
        onResponseData: (c, chunk) => {
          sink.enqueue(chunk);
          if ((sink.desiredSize ?? 1) <= 0) c.pause();
        },
        onResponseEnd: () => sink.close(),
        onResponseError: (_c, err) => {
          reject(err);
          sink.error(err);
        },
      },
    );
  });
}

async function run(fn: () => Promise<string>, total: number): Promise<{ rps: number; p50: number; p99: number }> {
  const times: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next++ < total) {
        const t = performance.now();
        const text = await fn();
        if (text.length !== 1024) throw new Error(`bad answer: ${text.length} bytes`);
        times.push(performance.now() - t);
      }
    }),
  );
  const elapsed = performance.now() - started;
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.floor((p / 100) * (times.length - 1))]!;
  return { rps: Math.round((total / elapsed) * 1000), p50: at(50), p99: at(99) };
}

for (const fn of Object.values(variants)) await run(fn, 2000); // warm-up
for (let round = 1; round <= 2; round++) {
  for (const [name, fn] of Object.entries(variants)) {
    const { rps, p50, p99 } = await run(fn, TOTAL);
    console.log(
      `round ${round}  ${name.padEnd(30)} ${String(rps).padStart(6)} req/s  p50 ${(p50 * 1000).toFixed(0)} µs  p99 ${(p99 * 1000).toFixed(0)} µs`,
    );
  }
}
await pool.close();
await barePool.close();
bare.kill();
rmSync(bareSocket, { force: true });
await runtime.close();
