// CRIU restore vs a plain app-mode start, side by side in one run, for the Python app fixture and
// an app with ≈ 500 ms of init (bench/fixtures/py-slow), both `network: none`, and the Python
// fixture with `network: egress` (a plain start in the host network vs a restore into a fresh
// namespace plus its slirp4netns attach): runtime.start → first response, runs interleaved
// (plain, criu, plain, criu…) so machine load hits both alike; then the memory charged to one idle
// instance of each (cgroup; an egress restore's includes its slirp4netns). Sandboxed instances.
// Run: npm run build && node --import tsx bench/criu.ts [runs=20]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCriuRuntime, criuSupport } from '../src/runtime/criu/index.js';
import { createProcessRuntime } from '../src/runtime/process/process-runtime.js';
import type { InstanceSpec } from '../src/runtime/types.js';
import { percentile, ROOT } from './support.js';

const runs = Number(process.argv[2] ?? 20);
const support = await criuSupport();
if (!support.available) {
  console.log(`criu not available: ${support.reason}`);
  process.exit(0);
}
const dir = mkdtempSync(join(tmpdir(), 'nimbus-bench-criu-'));
const rt = createCriuRuntime({ inner: createProcessRuntime({ poolSize: 0 }), dir });
let n = 0;

const APPS = [
  { name: 'python hello (test/fixtures/apps/py-app)', dir: join(ROOT, 'test/fixtures/apps/py-app'), network: 'none' },
  {
    name: 'python, ≈ 500 ms init (bench/fixtures/py-slow)',
    dir: join(ROOT, 'bench/fixtures/py-slow'),
    network: 'none',
  },
  {
    name: 'python hello, network: egress (restore + slirp4netns attach)',
    dir: join(ROOT, 'test/fixtures/apps/py-app'),
    network: 'egress',
  },
] as const;

const spec = (appDir: string, key: string | undefined, network: 'none' | 'egress'): InstanceSpec => ({
  id: `b${++n}`,
  function: 'bench',
  revision: 'r1',
  kind: 'app',
  artifactDir: appDir,
  command: ['python3', 'server.py'],
  env: {},
  memoryMb: 256,
  timeoutMs: 30_000,
  startTimeoutMs: 60_000,
  network,
  ...(key ? { checkpoint: key } : {}),
});

/** Milliseconds from start to the first response; the instance is left running for the caller. */
async function coldStart(s: InstanceSpec, expect: 'spawn' | 'criu'): Promise<{ ms: number; id: string }> {
  const t0 = performance.now();
  const instance = await rt.start(s);
  await (await instance.fetch(new Request('http://instance/'))).text();
  const ms = performance.now() - t0;
  const mode = instance.startMode ?? 'spawn';
  if (mode !== expect) throw new Error(`expected a ${expect} start, got ${mode}`);
  return { ms, id: instance.id };
}

const fmt = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `p50 ${percentile(s, 50).toFixed(1)} ms, p95 ${percentile(s, 95).toFixed(1)} ms`;
};

try {
  console.log(`criu ${support.version}, ${runs} runs per mode, interleaved\n`);
  for (const app of APPS) {
    const key = `bench-${APPS.indexOf(app)}`;
    // The first checkpointed start is a plain one that makes the image.
    const first = await coldStart(spec(app.dir, key, app.network), 'spawn');
    await rt.settled(key);
    const status = (await rt.status({ kind: 'app', network: app.network, checkpoint: key }))!;
    if (!status.image) throw new Error(`no checkpoint: ${status.reason}`);
    await rt.stop(first.id);
    const plain: number[] = [];
    const restored: number[] = [];
    for (let i = 0; i < runs; i++) {
      const a = await coldStart(spec(app.dir, undefined, app.network), 'spawn');
      plain.push(a.ms);
      await rt.stop(a.id);
      const b = await coldStart(spec(app.dir, key, app.network), 'criu');
      restored.push(b.ms);
      await rt.stop(b.id);
    }
    // Memory of one idle instance each, a moment after its first response.
    const mem: string[] = [];
    for (const [label, s, expect] of [
      ['plain', spec(app.dir, undefined, app.network), 'spawn'],
      ['criu', spec(app.dir, key, app.network), 'criu'],
    ] as const) {
      const { id } = await coldStart(s, expect);
      await new Promise((r) => setTimeout(r, 500));
      mem.push(`${label} ${((rt.stats(id)?.memoryBytes ?? 0) / 1048576).toFixed(1)} MiB`);
      await rt.stop(id);
    }
    const ratio =
      percentile(
        [...restored].sort((x, y) => x - y),
        50,
      ) /
      percentile(
        [...plain].sort((x, y) => x - y),
        50,
      );
    console.log(app.name);
    console.log(`  plain start → first response: ${fmt(plain)}`);
    console.log(`  CRIU restore → first response: ${fmt(restored)}   (p50 ratio ${(ratio * 100).toFixed(0)}%)`);
    console.log(
      `  image ${(status.image.bytes / 1e6).toFixed(1)} MB, dump ${status.image.dumpMs} ms; idle memory: ${mem.join(', ')}\n`,
    );
  }
} finally {
  await rt.close();
  rmSync(dir, { recursive: true, force: true });
}
