// Cold start: scale-from-zero to first response through Nimbus vs. spawning a bare node hello
// server until its first response, side by side in one run.
// Run: npm run build && node --import tsx bench/cold-start.ts [runs=20]
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

const nimbus = await startNimbusProcess();
const bare: number[] = [];
const gateway: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    bare.push(await bareColdStart());
    // A new revision (env changes) has no instance: its first request is a scale-from-zero.
    await deploy(nimbus.url, join(ROOT, 'bench/fixtures/hello'), { name: 'cold', env: { RUN: String(i) } });
    const t0 = performance.now();
    const res = await fetch(`${nimbus.url}/fn/cold/`);
    await res.text();
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    gateway.push(performance.now() - t0);
  }
} finally {
  nimbus.child.kill('SIGTERM');
}
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95) };
};
const b = stats(bare);
const g = stats(gateway);
console.log(`${runs} runs each, alternating; milliseconds`);
console.log('| target | p50 ms | p95 ms |\n| --- | --- | --- |');
console.log(`| bare node spawn → first response | ${b.p50.toFixed(1)} | ${b.p95.toFixed(1)} |`);
console.log(`| nimbus scale-from-zero → first response | ${g.p50.toFixed(1)} | ${g.p95.toFixed(1)} |`);
console.log(`\nnimbus / bare p50: ${(g.p50 / b.p50).toFixed(2)}×`);
