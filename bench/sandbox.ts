// Sandbox cost: unsandboxed vs sandboxed (bubblewrap + cgroups + seccomp) instances, side by side
// in one run.
//  - cold start: scale-from-zero → first response through the gateway (a new revision each run),
//    alternating between the targets so machine noise hits all of them alike; each with the warm
//    pool off (`poolSize` 0: a spawn, the sandbox set up on the request's path) and on (the sandbox
//    is set up before the request; the run waits for a warm cell first, and counts pool hits);
//  - warm throughput: one warm instance, 16 requests in flight for a fixed time, alternating rounds
//    after a discarded warm-up round;
//  - freeze / thaw: cgroup freezer latency, and thaw → first response.
// Targets: unsandboxed and sandboxed, spawn and pool; sandboxed without seccomp; `cpu=2` (a quota
// that never binds: isolation cost alone; the default 256 MB gets a 0.5-core steady quota), with
// and without seccomp.
// Run: npm run build && node --import tsx bench/sandbox.ts [coldRuns=15] [warmSeconds=5]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packDirectory } from '../src/cli/pack.js';
import { type NimbusNode, startNimbus } from '../src/cmd/serve.js';
import { packageRoot } from '../src/core/package-root.js';
import { createProcessRuntime, type ProcessRuntime } from '../src/runtime/index.js';

const coldRuns = Number(process.argv[2] ?? 15);
const warmSeconds = Number(process.argv[3] ?? 5);
const HELLO = join(packageRoot(), 'bench', 'fixtures', 'hello');
const IN_FLIGHT = 16;
const ROUNDS = 5;
/** The process runtime's default pool size (set explicitly on the unsandboxed pool target). */
const POOL_SIZE = 2;

interface Target {
  label: string;
  config: Record<string, unknown>;
  /** Measured for warm throughput too (the pool changes only cold starts). */
  warmRun: boolean;
  pooled: boolean;
  poolHits: number;
  runtime: ProcessRuntime;
  node: NimbusNode;
  dataDir: string;
  cold: number[];
  warm: number[];
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

async function deploy(t: Target, env: Record<string, string>): Promise<void> {
  const { archive } = await packDirectory(HELLO);
  const q = new URLSearchParams({ config: JSON.stringify({ name: 'hello', env, ...t.config }) });
  const res = await fetch(`${t.node.url}/api/v1/functions?${q}`, { method: 'POST', body: archive });
  if (res.status !== 201) throw new Error(`deploy: ${res.status} ${await res.text()}`);
}

/** Waits until the pool is full again (both cells warm): a refill still spawning would skew a start. */
async function waitForFullPool(t: Target): Promise<void> {
  const end = performance.now() + 15_000;
  while (t.runtime.pool().filter((c) => c.state === 'warm').length < POOL_SIZE && performance.now() < end)
    await new Promise((r) => setTimeout(r, 20));
}

async function coldStart(t: Target, run: number, all: Target[]): Promise<number> {
  await deploy(t, { RUN: String(run) }); // a new revision: no instance yet
  // Every pool refilled first: another target's refill spawning next to this start would skew it.
  for (const other of all) if (other.pooled) await waitForFullPool(other);
  const t0 = performance.now();
  const res = await fetch(`${t.node.url}/fn/hello/`);
  await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`cold: status ${res.status}`);
  if (t.runtime.list().some((i) => i.startMode === 'pool' && i.spec.env.RUN === String(run))) t.poolHits++;
  return ms;
}

/** Runtime start → ready, without the gateway (less noise than a request): a process spawn. */
async function runtimeStart(t: Target, run: number): Promise<number> {
  const t0 = performance.now();
  const inst = await t.runtime.start({
    id: `direct-${run}`,
    function: 'direct',
    revision: 'r',
    kind: 'node',
    artifactDir: HELLO,
    entry: 'index.js',
    env: {},
    memoryMb: 256,
    timeoutMs: 5000,
  });
  const ms = performance.now() - t0;
  await t.runtime.stop(inst.id);
  return ms;
}

async function warmRound(t: Target, seconds: number): Promise<number> {
  const url = `${t.node.url}/fn/hello/`;
  await (await fetch(url)).text();
  const end = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        const res = await fetch(url);
        await res.arrayBuffer();
        done++;
      }
    }),
  );
  return done / seconds;
}

async function main(): Promise<void> {
  const targets: Target[] = [];
  const off = { mode: 'off' as const };
  const noSeccomp = { seccomp: false };
  for (const [label, sandbox, poolSize, config, warmRun] of [
    ['unsandboxed, spawn', off, 0, {}, true],
    ['unsandboxed, pool', off, POOL_SIZE, {}, false],
    ['sandboxed, spawn', {}, 0, {}, true],
    ['sandboxed, pool (default)', {}, undefined, {}, false],
    ['sandboxed no seccomp, spawn', noSeccomp, 0, {}, false],
    ['sandboxed cpu=2', {}, undefined, { cpu: 2 }, true],
    ['sandboxed cpu=2 no seccomp', noSeccomp, undefined, { cpu: 2 }, true],
  ] as const) {
    const runtime = createProcessRuntime({ sandbox, poolSize });
    if (sandbox !== off && !runtime.sandboxed) throw new Error(`no sandbox here: ${runtime.warnings.join('; ')}`);
    if (sandbox === off ? runtime.seccomp : runtime.seccomp !== (sandbox !== noSeccomp))
      throw new Error(`${label}: seccomp is ${runtime.seccomp} (${runtime.warnings.join('; ')})`);
    const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-bench-sandbox-'));
    const node = await startNimbus({ port: 0, dataDir, runtime });
    const pooled = poolSize !== 0;
    targets.push({ label, config, warmRun, pooled, poolHits: 0, runtime, node, dataDir, cold: [], warm: [] });
  }
  const byLabel = (label: string) => targets.find((t) => t.label === label)!;
  try {
    for (let run = 0; run < coldRuns; run++) for (const t of targets) t.cold.push(await coldStart(t, run, targets));
    const spawnTargets = targets.filter((t) => !t.pooled);
    const direct = new Map(spawnTargets.map((t) => [t, [] as number[]]));
    for (let run = 0; run < coldRuns; run++)
      for (const t of spawnTargets) direct.get(t)!.push(await runtimeStart(t, run));
    const warmTargets = targets.filter((t) => t.warmRun);
    for (const t of warmTargets) await warmRound(t, 0.5); // JIT warm-up of every side, discarded
    for (let round = 0; round < ROUNDS; round++)
      for (const t of warmTargets) t.warm.push(await warmRound(t, warmSeconds / ROUNDS));

    console.log(`cold start, scale-from-zero → first response (ms, ${coldRuns} runs each, alternating)`);
    console.log('| target | p50 | p90 | min | pool hits |\n| --- | --- | --- | --- | --- |');
    for (const t of targets)
      console.log(
        `| ${t.label} | ${quantile(t.cold, 0.5).toFixed(1)} | ${quantile(t.cold, 0.9).toFixed(1)} | ${Math.min(...t.cold).toFixed(1)} | ${t.pooled ? `${t.poolHits}/${coldRuns}` : '–'} |`,
      );
    const p50 = (label: string) => quantile(byLabel(label).cold, 0.5);
    console.log('\ncold start added by the sandbox (p50 difference, ms; aim ≤ 10)');
    for (const [what, a, b] of [
      ['sandboxed spawn − unsandboxed spawn', 'sandboxed, spawn', 'unsandboxed, spawn'],
      ['sandboxed pool − unsandboxed spawn', 'sandboxed, pool (default)', 'unsandboxed, spawn'],
      ['sandboxed pool − unsandboxed pool', 'sandboxed, pool (default)', 'unsandboxed, pool'],
      ['seccomp on − off (spawn)', 'sandboxed, spawn', 'sandboxed no seccomp, spawn'],
    ] as const)
      console.log(`- ${what}: ${(p50(a) - p50(b)).toFixed(1)}`);
    console.log(`\nruntime start → ready, no gateway (ms, ${coldRuns} runs each, alternating)`);
    console.log('| target | p50 | p90 | min |\n| --- | --- | --- | --- |');
    for (const [t, xs] of direct)
      console.log(
        `| ${t.label} | ${quantile(xs, 0.5).toFixed(1)} | ${quantile(xs, 0.9).toFixed(1)} | ${Math.min(...xs).toFixed(1)} |`,
      );
    console.log(`\nwarm throughput through the gateway (req/s, ${IN_FLIGHT} in flight, ${ROUNDS} alternating rounds)`);
    console.log('| target | median | rounds |\n| --- | --- | --- |');
    for (const t of warmTargets)
      console.log(
        `| ${t.label} | ${quantile(t.warm, 0.5).toFixed(0)} | ${t.warm.map((r) => r.toFixed(0)).join(' / ')} |`,
      );
    const warm = (label: string) => quantile(byLabel(label).warm, 0.5);
    console.log('\nwarm throughput ratios (medians; aim ≥ 0.95)');
    for (const [what, a, b] of [
      ['sandboxed cpu=2 / unsandboxed', 'sandboxed cpu=2', 'unsandboxed, spawn'],
      ['sandboxed (0.5-core quota) / unsandboxed', 'sandboxed, spawn', 'unsandboxed, spawn'],
      ['seccomp on / off (cpu=2)', 'sandboxed cpu=2', 'sandboxed cpu=2 no seccomp'],
    ] as const)
      console.log(`- ${what}: ${(warm(a) / warm(b)).toFixed(3)}`);

    // Freeze / thaw on the sandboxed target's warm instance.
    const t = byLabel('sandboxed, spawn');
    const [inst] = t.runtime.list();
    if (inst) {
      const freeze: number[] = [];
      const thaw: number[] = [];
      const thawToAnswer: number[] = [];
      for (let i = 0; i < 20; i++) {
        let t0 = performance.now();
        await t.runtime.freeze(inst.id);
        freeze.push(performance.now() - t0);
        t0 = performance.now();
        await t.runtime.thaw(inst.id);
        thaw.push(performance.now() - t0);
        await t.runtime.freeze(inst.id);
        t0 = performance.now();
        await t.runtime.thaw(inst.id);
        await (await fetch(`${t.node.url}/fn/hello/`)).text();
        thawToAnswer.push(performance.now() - t0);
      }
      console.log('\nfreeze / thaw (cgroup freezer, ms, 20 runs)');
      console.log('| step | p50 | p90 |\n| --- | --- | --- |');
      for (const [name, xs] of [
        ['freeze', freeze],
        ['thaw', thaw],
        ['thaw → first response', thawToAnswer],
      ] as const)
        console.log(`| ${name} | ${quantile(xs, 0.5).toFixed(2)} | ${quantile(xs, 0.9).toFixed(2)} |`);
    }
  } finally {
    for (const t of targets) {
      await t.node.close();
      rmSync(t.dataDir, { recursive: true, force: true });
    }
  }
}

await main();
