// Cold start: scale-from-zero to first response through Nimbus vs. spawning a bare node hello
// server until its first response, side by side in one run (alternating).
// Run: npm run build && node --import tsx bench/cold-start.ts [runs=20]
// Optional: BEFORE=/path/to/another/nimbus/checkout (built) adds that build as a third target.
import { join } from 'node:path';
import { deploy, percentile, ROOT, spawnUntil, startNimbusProcess } from './support.js';

const runs = Number(process.argv[2] ?? 20);

async function bareColdStart(): Promise<number> {
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
}

async function nimbusColdStart(url: string, run: number): Promise<number> {
  // A new revision (env changes) has no instance: its first request is a scale-from-zero.
  await deploy(url, join(ROOT, 'bench/fixtures/hello'), { name: 'cold', env: { RUN: String(run) } });
  const t0 = performance.now();
  const res = await fetch(`${url}/fn/cold/`);
  await res.text();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return performance.now() - t0;
}

const nodes = [{ name: process.env.BEFORE ? 'nimbus (after)' : 'nimbus', node: await startNimbusProcess() }];
if (process.env.BEFORE) nodes.unshift({ name: 'nimbus (before)', node: await startNimbusProcess(process.env.BEFORE) });
const times = new Map<string, number[]>([['bare', []], ...nodes.map((n) => [n.name, []] as [string, number[]])]);
try {
  for (let i = 0; i < runs; i++) {
    times.get('bare')!.push(await bareColdStart());
    for (const { name, node } of nodes) times.get(name)!.push(await nimbusColdStart(node.url, i));
  }
} finally {
  for (const { node } of nodes) node.child.kill('SIGTERM');
}
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95) };
};
const bare = stats(times.get('bare')!);
console.log(`${runs} runs each, alternating; milliseconds`);
console.log('| target | p50 ms | p95 ms | p50 vs bare |\n| --- | --- | --- | --- |');
console.log(`| bare node spawn → first response | ${bare.p50.toFixed(1)} | ${bare.p95.toFixed(1)} | 1.00× |`);
for (const { name } of nodes) {
  const s = stats(times.get(name)!);
  console.log(
    `| ${name} scale-from-zero → first response | ${s.p50.toFixed(1)} | ${s.p95.toFixed(1)} | ${(s.p50 / bare.p50).toFixed(2)}× |`,
  );
}
