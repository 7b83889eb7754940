// Cold start with and without a V8 startup snapshot (docs/snapshots.md): scale-from-zero to first
// response through Nimbus, for hello and two functions with ≈ 500 ms of init (heavy-init: typical;
// heavy-heap: a very large heap, the worst case for restoring), side by side in one
// run (modes alternate within each run). The warm pool is off (--pool-size 0) so "plain" is a
// process spawn. Each run deploys a new revision (env RUN=i), so its first request is a cold start;
// the snapshot build happens in the deploy and is not timed (its cost is reported apart).
// Then the same starts with node alone (no Nimbus), to show what restoring itself costs.
// Run: npm run build && node --import tsx bench/snapshot.ts [runs=20]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildArtifact, resolveConfig } from '../src/build/index.js';
import { packDirectory } from '../src/cli/pack.js';
import { heapLimitMb } from '../src/runtime/sandbox/limits.js';
import { createSnapshotBuilder, SNAPSHOT_BLOB } from '../src/runtime/snapshot/index.js';
import { percentile, ROOT, startNimbusProcess } from './support.js';

const runs = Number(process.argv[2] ?? 20);
/** Pause between a deploy and its timed first request. */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 500);
const fixtures = ['hello', 'heavy-init', 'heavy-heap'] as const;
const modes = ['plain', 'snapshot'] as const;
type Key = `${(typeof fixtures)[number]}/${(typeof modes)[number]}`;

interface Deployed {
  snapshot?: { status: string; bytes?: number; buildMs?: number; error?: string };
}

async function deploy(url: string, fixture: string, config: Record<string, unknown>): Promise<Deployed> {
  const { archive } = await packDirectory(join(ROOT, 'bench/fixtures', fixture));
  const res = await fetch(`${url}/api/v1/functions?config=${encodeURIComponent(JSON.stringify(config))}`, {
    method: 'POST',
    body: archive,
  });
  const body = (await res.json()) as Deployed;
  if (res.status >= 300) throw new Error(`deploy failed: ${JSON.stringify(body)}`);
  return body;
}

const { url, child } = await startNimbusProcess(ROOT, ['--pool-size', '0']);
const times = new Map<Key, number[]>();
const blobs = new Map<string, { bytes: number; buildMs: number[] }>();
const memory = new Map<Key, number>();
try {
  for (let i = 0; i < runs; i++) {
    for (const fixture of fixtures) {
      for (const mode of modes) {
        const key: Key = `${fixture}/${mode}`;
        const name = `${fixture}-${mode}`;
        const body = await deploy(url, fixture, {
          name,
          env: { RUN: String(i) },
          // plain: no automatic snapshot either (its background build would load the machine).
          snapshot: mode === 'snapshot' ? 'required' : false,
        });
        if (body.snapshot?.status === 'ready') {
          const b = blobs.get(fixture) ?? { bytes: body.snapshot.bytes ?? 0, buildMs: [] };
          b.buildMs.push(body.snapshot.buildMs ?? 0);
          blobs.set(fixture, b);
        }
        // Let the deploy's own aftermath (retiring the previous revision) pass, in every mode alike.
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const t0 = performance.now();
        const res = await fetch(`${url}/fn/${name}/`);
        await res.text();
        if (res.status !== 200) throw new Error(`${name}: status ${res.status}`);
        const ms = performance.now() - t0;
        times.set(key, [...(times.get(key) ?? []), ms]);
        if (i === runs - 1) memory.set(key, await idleMemory(name));
      }
    }
  }
} finally {
  child.kill('SIGTERM');
}

/** The instance's memory (cgroup charge) once the sampler has seen it idle. */
async function idleMemory(name: string): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const w = (await (await fetch(`${url}/api/v1/functions/${name}/instances`)).json()) as {
      instances: { usage?: { memoryBytes: number } }[];
    };
    const bytes = w.instances[0]?.usage?.memoryBytes;
    if (bytes) return bytes;
    await new Promise((r) => setTimeout(r, 200));
  }
  return Number.NaN;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95) };
};
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
console.log(`${runs} runs per mode, modes alternating; milliseconds; warm pool off`);
console.log('| function | mode | p50 ms | p95 ms | p50 vs plain | idle instance memory | blob | snapshot build p50 |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const fixture of fixtures) {
  const plain = stats(times.get(`${fixture}/plain`)!);
  for (const mode of modes) {
    const key: Key = `${fixture}/${mode}`;
    const s = stats(times.get(key)!);
    const blob = blobs.get(fixture);
    const extra =
      mode === 'snapshot' && blob ? `${mb(blob.bytes)} MB | ${(stats(blob.buildMs).p50 / 1000).toFixed(2)} s` : '- | -';
    console.log(
      `| ${fixture} | ${mode} | ${s.p50.toFixed(1)} | ${s.p95.toFixed(1)} | ${(s.p50 / plain.p50).toFixed(2)}× | ${mb(memory.get(key) ?? Number.NaN)} MB | ${extra} |`,
    );
  }
}

// The same starts without Nimbus around them (no sandbox, gateway or channel): `node` running the
// guest on the function's bundle vs `node --snapshot-blob`, spawn → readiness line. This isolates
// what V8 restoring costs from the platform's own start path.
const direct = new Map<Key, number[]>();
const builder = createSnapshotBuilder({ sandbox: { mode: 'off' } });
const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-snap-'));
try {
  const dirs = new Map<string, string>();
  for (const fixture of fixtures) {
    const files = [
      { path: 'index.js', mode: 0o644, content: readFileSync(join(ROOT, 'bench/fixtures', fixture, 'index.js')) },
    ];
    const built = await buildArtifact(files, resolveConfig(files, {}, fixture));
    const dir = join(work, fixture);
    mkdirSync(dir);
    for (const f of built.files) writeFileSync(join(dir, f.path), f.content);
    const { blob } = await builder.build({
      function: fixture,
      artifactDir: dir,
      entry: built.entry!,
      env: {},
      memoryMb: 256,
    });
    writeFileSync(join(dir, SNAPSHOT_BLOB), blob);
    dirs.set(fixture, dir);
  }
  const guest = join(ROOT, 'dist/guest/function.mjs');
  for (let i = 0; i < runs; i++) {
    for (const fixture of fixtures) {
      const dir = dirs.get(fixture)!;
      for (const mode of modes) {
        const args = mode === 'plain' ? [guest] : ['--snapshot-blob', join(dir, SNAPSHOT_BLOB)];
        const key: Key = `${fixture}/${mode}`;
        direct.set(key, [
          ...(direct.get(key) ?? []),
          await untilReady([`--max-old-space-size=${heapLimitMb(256)}`, ...args], dir),
        ]);
      }
    }
  }
} finally {
  builder.close();
  rmSync(work, { recursive: true, force: true });
}

function untilReady(args: string[], dir: string): Promise<number> {
  const t0 = performance.now();
  const env = { NIMBUS_SOCKET: join(dir, 's.sock'), NIMBUS_MODULE: join(dir, 'index.mjs') };
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
  return new Promise((resolve, reject) => {
    child.stdio[3]!.once('data', () => {
      resolve(performance.now() - t0);
      child.kill('SIGKILL');
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before it was ready`)));
  });
}

console.log(`\nnode alone (no Nimbus): spawn → readiness, ${runs} runs each`);
console.log('| function | plain p50 ms | snapshot p50 ms | snapshot vs plain |\n| --- | --- | --- | --- |');
for (const fixture of fixtures) {
  const plain = stats(direct.get(`${fixture}/plain`)!).p50;
  const snap = stats(direct.get(`${fixture}/snapshot`)!).p50;
  console.log(`| ${fixture} | ${plain.toFixed(1)} | ${snap.toFixed(1)} | ${(snap / plain).toFixed(2)}× |`);
}
