// Sandbox cost: unsandboxed vs sandboxed (bubblewrap + cgroups) instances, side by side in one run.
//  - cold start: scale-from-zero → first response through the gateway (a new revision each run),
//    alternating between the targets so machine noise hits all of them alike;
//  - warm throughput: one warm instance, 16 requests in flight for a fixed time, alternating rounds
//    after a discarded warm-up round;
//  - freeze / thaw: cgroup freezer latency, and thaw → first response.
// Targets: `plain` (sandbox off), `sandboxed` (default limits: 256 MB → 0.5 core steady quota) and
// `sandboxed cpu=2` (the same sandbox with a quota that never binds: isolation cost alone).
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

interface Target {
  label: string;
  config: Record<string, unknown>;
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

async function coldStart(t: Target, run: number): Promise<number> {
  await deploy(t, { RUN: String(run) }); // a new revision: no instance yet
  const t0 = performance.now();
  const res = await fetch(`${t.node.url}/fn/hello/`);
  await res.text();
  if (res.status !== 200) throw new Error(`cold: status ${res.status}`);
  return performance.now() - t0;
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
  for (const [label, sandbox, config] of [
    ['plain', { mode: 'off' as const }, {}],
    ['sandboxed', {}, {}],
    ['sandboxed cpu=2', {}, { cpu: 2 }],
  ] as const) {
    const runtime = createProcessRuntime({ sandbox });
    if (label !== 'plain' && !runtime.sandboxed) throw new Error(`no sandbox here: ${runtime.warnings.join('; ')}`);
    const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-bench-sandbox-'));
    const node = await startNimbus({ port: 0, dataDir, runtime });
    targets.push({ label, config, runtime, node, dataDir, cold: [], warm: [] });
  }
  try {
    for (let run = 0; run < coldRuns; run++) for (const t of targets) t.cold.push(await coldStart(t, run));
    for (const t of targets) await warmRound(t, 0.5); // JIT warm-up of both sides, discarded
    for (let round = 0; round < ROUNDS; round++)
      for (const t of targets) t.warm.push(await warmRound(t, warmSeconds / ROUNDS));

    console.log(`cold start, scale-from-zero → first response (ms, ${coldRuns} runs each, alternating)`);
    console.log('| target | p50 | p90 | min |\n| --- | --- | --- | --- |');
    for (const t of targets)
      console.log(
        `| ${t.label} | ${quantile(t.cold, 0.5).toFixed(1)} | ${quantile(t.cold, 0.9).toFixed(1)} | ${Math.min(...t.cold).toFixed(1)} |`,
      );
    console.log(`\nwarm throughput through the gateway (req/s, ${IN_FLIGHT} in flight, ${ROUNDS} alternating rounds)`);
    console.log('| target | median | rounds |\n| --- | --- | --- |');
    for (const t of targets)
      console.log(
        `| ${t.label} | ${quantile(t.warm, 0.5).toFixed(0)} | ${t.warm.map((r) => r.toFixed(0)).join(' / ')} |`,
      );

    // Freeze / thaw on the sandboxed target's warm instance.
    const t = targets[1]!;
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
