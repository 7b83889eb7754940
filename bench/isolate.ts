// runtime: isolate, side by side in one run (issue 4): cold start of an isolate instance at the
// provider (start → first response) and through a Nimbus node's gateway (scale-from-zero → first
// response), the isolate-host child option (a prototype over Node IPC), the process runtime's
// spawn through the same node, and workerd's own process cold
// start (spawn → first HTTP response, loopback) as a peer. Runs are interleaved. Then memory per
// idle isolate: RSS delta of 1,000 idle instances / 1,000, and their V8 heaps.
// Run: npm run build && node --import tsx --expose-gc bench/isolate.ts [runs=30] [idle=1000]
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIsolateRuntime } from '../src/runtime/isolate/index.js';
import type { InstanceSpec } from '../src/runtime/types.js';
import { deploy, percentile, ROOT, startNimbusProcess } from './support.js';

const runs = Number(process.argv[2] ?? 30);
const idle = Number(process.argv[3] ?? 1000);
const HELLO = join(ROOT, 'bench/fixtures/hello');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const spec = (id: string): InstanceSpec => ({
  id,
  function: 'hello',
  revision: 'r1',
  kind: 'isolate',
  artifactDir: HELLO,
  entry: 'index.js',
  env: {},
  memoryMb: 64,
  timeoutMs: 5000,
});

interface Mode {
  name: string;
  setup?(): Promise<void>;
  once(run: number): Promise<number>;
  teardown?(): Promise<void>;
}

const provider = createIsolateRuntime({ spares: 0 });
/** Provider-level start → first response; `spares` 0 makes every isolate on demand. */
function providerMode(name: string, runtime = createIsolateRuntime()): Mode {
  return {
    name,
    async setup() {
      // The first start makes the prelude snapshot (once per node): not a cold start of a function.
      const warm = await runtime.start(spec('warm'));
      await runtime.stop(warm.id);
      await sleep(50);
    },
    async once(run) {
      const t0 = performance.now();
      const instance = await runtime.start(spec(`cold-${run}`));
      await (await instance.fetch(new Request('http://fn/'))).text();
      const ms = performance.now() - t0;
      await runtime.stop(instance.id);
      // Lets the spares refill (50 ms after a take), as between two cold starts on a node.
      await sleep(100);
      return ms;
    },
    teardown: () => runtime.close(),
  };
}
const withSpares = providerMode('isolate provider (2 spare isolates): start → first response');

/** Scale-from-zero through a `nimbus serve` process: every run deploys a new revision first. */
function nimbusMode(name: string, runtime: 'isolate' | 'node'): Mode {
  let node: Awaited<ReturnType<typeof startNimbusProcess>> | undefined;
  const fn = `cold-${runtime}`;
  return {
    name,
    async setup() {
      node = await startNimbusProcess(ROOT, []);
      // One first call so the node's own one-time work (the snapshot) is not counted.
      await deploy(node.url, HELLO, { name: fn, runtime, env: { RUN: 'warm' } });
      await (await fetch(`${node.url}/fn/${fn}/`)).text();
    },
    async once(run) {
      await deploy(node!.url, HELLO, { name: fn, runtime, env: { RUN: String(run) } });
      const t0 = performance.now();
      const res = await fetch(`${node!.url}/fn/${fn}/`);
      await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`${name}: status ${res.status}`);
      return ms;
    },
    async teardown() {
      node?.child.kill('SIGTERM');
    },
  };
}

/** The isolate-host child option (bench/fixtures/isolate-host.mjs): start + first request over IPC. */
function hostMode(): Mode {
  let child: ReturnType<typeof fork> | undefined;
  let seq = 0;
  const waiting = new Map<number, (m: any) => void>();
  const call = (m: Record<string, unknown>) =>
    new Promise<any>((resolve) => {
      waiting.set(++seq, resolve);
      child!.send({ ...m, seq });
    });
  const code = readFileSync(join(HELLO, 'index.js'), 'utf8');
  return {
    name: 'isolate-host child process (prototype, Node IPC): start → first response',
    async setup() {
      child = fork(join(ROOT, 'bench/fixtures/isolate-host.mjs'), [join(ROOT, 'dist/isolate/prelude.js')], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      await new Promise<void>((resolve) =>
        child!.on('message', (m: any) => (m.ready ? resolve() : waiting.get(m.seq)?.(m))),
      );
    },
    async once(run) {
      const id = `h${run}`;
      const t0 = performance.now();
      const started = await call({ op: 'start', id, code });
      const answer = await call({ op: 'fetch', id, method: 'GET', url: 'http://fn/' });
      const ms = performance.now() - t0;
      if (started.error || answer.status !== 200) throw new Error(`host: ${started.error ?? answer.error}`);
      await call({ op: 'stop', id });
      return ms;
    },
    async teardown() {
      child?.kill();
    },
  };
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** workerd (the npm binary) serving a hello worker: spawn → first HTTP response. */
const workerdDir = mkdtempSync(join(tmpdir(), 'nimbus-workerd-'));
const workerdMode: Mode = {
  name: 'workerd process: spawn → first response (peer)',
  async once() {
    const port = await freePort();
    writeFileSync(join(workerdDir, 'hello.js'), "export default { fetch: () => new Response('hello world\\n') };");
    writeFileSync(
      join(workerdDir, 'config.capnp'),
      `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const hello :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "hello.js") ],
  compatibilityDate = "2024-01-01",
);
`,
    );
    const t0 = performance.now();
    const child = spawn(join(ROOT, 'node_modules/.bin/workerd'), ['serve', join(workerdDir, 'config.capnp')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      for (;;) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/`);
          await res.text();
          return performance.now() - t0;
        } catch {
          if (child.exitCode !== null) throw new Error(`workerd exited with ${child.exitCode}`);
          await sleep(1);
        }
      }
    } finally {
      child.kill('SIGKILL');
    }
  },
};

const modes: Mode[] = [
  withSpares,
  providerMode('isolate provider (no spares): start → first response', createIsolateRuntime({ spares: 0 })),
  hostMode(),
  nimbusMode('nimbus gateway, runtime isolate: scale-from-zero → first response', 'isolate'),
  nimbusMode(
    'nimbus gateway, runtime node (its default start: spawn or warm-pool cell): scale-from-zero → first response',
    'node',
  ),
  workerdMode,
];
const times = new Map<Mode, number[]>(modes.map((m) => [m, []]));
for (const mode of modes) await mode.setup?.();
try {
  for (let i = 0; i < runs; i++) for (const mode of modes) times.get(mode)!.push(await mode.once(i));
} finally {
  for (const mode of modes) await mode.teardown?.();
  rmSync(workerdDir, { recursive: true, force: true });
}
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95) };
};
const base = stats(times.get(withSpares)!).p50;
console.log(`${runs} runs each, interleaved; milliseconds`);
console.log('| mode | p50 ms | p95 ms | p50 vs isolate provider |\n| --- | --- | --- | --- |');
for (const mode of modes) {
  const s = stats(times.get(mode)!);
  console.log(`| ${mode.name} | ${s.p50.toFixed(2)} | ${s.p95.toFixed(2)} | ${(s.p50 / base).toFixed(1)}× |`);
}

// Memory per idle isolate: RSS of this process before and after `idle` idle instances (each
// answered one request), after a GC of the host heap.
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
await sleep(100);
const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
const ids: string[] = [];
for (let i = 0; i < idle; i++) {
  const instance = await provider.start(spec(`idle-${i}`));
  await (await instance.fetch(new Request('http://fn/'))).text();
  ids.push(instance.id);
}
const startAll = performance.now() - t0;
for (const id of ids) provider.stats(id);
await sleep(300);
gc?.();
const rss1 = process.memoryUsage().rss;
const heap = ids.reduce((sum, id) => sum + (provider.stats(id)?.memoryBytes ?? 0), 0);
const mb = (b: number) => (b / 1024 / 1024).toFixed(2);
console.log(`\n| ${idle} idle isolates (one request each) | value |\n| --- | --- |`);
console.log(`| started and called one after another in | ${(startAll / 1000).toFixed(2)} s |`);
console.log(`| RSS delta / instance | ${mb((rss1 - rss0) / idle)} MB |`);
console.log(`| V8 heap in use / instance (isolate heap statistics) | ${mb(heap / idle)} MB |`);
console.log(
  `| RSS of the process with all of them | ${mb(rss1)} MB |${gc ? '' : ' (run with --expose-gc for a steadier delta)'}`,
);
await provider.close();
