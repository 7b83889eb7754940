// Cold start, side by side in one run: spawning a bare node hello server until its first response,
// and Nimbus scale-from-zero → first response in each start mode (a plain spawn, a warm pool
// cell). Modes are a list: add one by adding an entry. Runs are interleaved (run i of every mode,
// then run i + 1), so load on the machine hits every mode alike. Then the memory of one idle
// instance per mode (cgroup charge), from an in-process runtime.
// Run: npm run build && node --import tsx bench/cold-start.ts [runs=20]
// Optional: BEFORE=/path/to/another/nimbus/checkout (built) adds that build's start as a mode (BEFORE_ARGS: its serve flags, e.g. "--pool-size 0").
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createProcessRuntime } from '../src/runtime/process/process-runtime.js';
import { type BenchMode, deploy, ROOT, runModes, spawnUntil, startNimbusProcess } from './support.js';

const runs = Number(process.argv[2] ?? 20);
/** Time for a pool to refill between pooled runs (cells warm in ≈ 100-200 ms on a quiet machine). */
const POOL_SETTLE_MS = Number(process.env.POOL_SETTLE_MS ?? 600);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const bare: BenchMode = {
  name: 'bare node spawn → first response',
  async once() {
    const t0 = performance.now();
    const { child, match } = await spawnUntil(
      process.execPath,
      [join(ROOT, 'bench/fixtures/bare-server.mjs')],
      /listening (\d+)/,
    );
    await (await fetch(`http://127.0.0.1:${match[1]}/`)).text();
    const ms = performance.now() - t0;
    child.kill();
    return ms;
  },
};

/**
 * Nimbus (a `nimbus serve` process) cold-starting hello: each run deploys a new revision (env
 * changes), so its first request is a scale-from-zero. `expect` is the start mode the instance
 * must report (checked on the API, so a pooled number never silently measures a spawn).
 */
function nimbusMode(
  name: string,
  args: string[],
  expect?: string,
  root = ROOT,
  config: Record<string, unknown> = {},
): BenchMode {
  let node: { url: string; child: ChildProcess } | undefined;
  const fn = `cold-${name.split(' ')[0]!.replace(/[^a-z0-9]/g, '')}`;
  const modes: string[] = [];
  return {
    name,
    async setup() {
      node = await startNimbusProcess(root, args);
    },
    async once(run) {
      const url = node!.url;
      await deploy(url, join(ROOT, 'bench/fixtures/hello'), { ...config, name: fn, env: { RUN: String(run) } });
      if (expect === 'pool') await sleep(POOL_SETTLE_MS);
      const t0 = performance.now();
      const res = await fetch(`${url}/fn/${fn}/`);
      await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`${name}: status ${res.status}`);
      if (expect) {
        const body = (await (await fetch(`${url}/api/v1/functions/${fn}`)).json()) as {
          instances?: { revision: string; startMode?: string }[];
        };
        const mode = body.instances?.find((i) => i.startMode)?.startMode ?? 'unknown';
        modes.push(mode);
        if (mode !== expect) console.error(`${name}: run ${run} started as ${mode}, not ${expect}`);
      }
      return ms;
    },
    async teardown() {
      // Wait for its graceful stop: a node whose parent is gone dies on EPIPE and leaves instances behind.
      const exited = node && node.child.exitCode === null ? once(node.child, 'exit') : undefined;
      node?.child.kill('SIGTERM');
      await exited;
      if (modes.length) console.error(`${name}: start modes seen: ${[...new Set(modes)].join(', ')}`);
    },
  };
}

const modes: BenchMode[] = [
  bare,
  nimbusMode('nimbus spawn (--pool-size 0) scale-from-zero → first response', ['--pool-size', '0'], 'spawn'),
  nimbusMode('nimbus pool (--pool-size 2) scale-from-zero → first response', ['--pool-size', '2'], 'pool'),
  // The snapshot is built by the deploy (not timed; bench/snapshot.ts reports its cost and the heavy-init cases).
  nimbusMode(
    'nimbus snapshot (snapshot: true, --pool-size 0) scale-from-zero → first response',
    ['--pool-size', '0'],
    'snapshot',
    ROOT,
    { snapshot: 'required' },
  ),
];
if (process.env.BEFORE)
  modes.push(
    nimbusMode(
      'nimbus (before) scale-from-zero → first response',
      (process.env.BEFORE_ARGS ?? '').split(' ').filter(Boolean),
      undefined,
      process.env.BEFORE,
    ),
  );

await runModes(modes, runs, bare, { baseName: 'bare' });

// Memory of one idle instance per mode: cgroup charge of a spawned hello instance, and of a
// warm pool cell (a cell is an instance without its function yet).
const runtime = createProcessRuntime({ poolSize: 2 });
try {
  if (runtime.sandboxed) {
    const hello = await runtime.start({
      id: 'mem-spawn',
      function: 'hello',
      revision: 'r1',
      kind: 'node',
      artifactDir: join(ROOT, 'bench/fixtures/hello'),
      entry: 'index.js',
      env: {},
      memoryMb: 512,
      timeoutMs: 1000,
    });
    await (await hello.fetch(new Request('http://fn/'))).text();
    for (let i = 0; i < 100 && runtime.pool().filter((c) => c.state === 'warm').length < 2; i++) await sleep(50);
    await sleep(500);
    const mb = (b?: number) => ((b ?? 0) / 1024 / 1024).toFixed(1);
    console.log('\n| idle instance | memory (cgroup charge) MB |\n| --- | --- |');
    console.log(`| spawned hello instance, after one request | ${mb(runtime.stats('mem-spawn')?.memoryBytes)} |`);
    const cells = runtime.pool().filter((c) => c.state === 'warm' && c.shape.memoryMb === 256);
    console.log(
      `| warm pool cell (no function yet), mean of ${cells.length} | ${mb(cells.reduce((a, c) => a + (c.memoryBytes ?? 0), 0) / cells.length)} |`,
    );
  } else console.log("\n(memory per idle instance needs the sandbox's cgroups; not measured here)");
} finally {
  await runtime.close();
}
