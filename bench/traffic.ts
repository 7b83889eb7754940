/**
 * What it measures, in one run, through a real `nimbus serve` process (machine: say whether it was busy):
 *  1. Weighted routing cost: the same load (16 closed-loop clients, REQUESTS per round, rounds
 *     alternating) on a function with one revision (`latest=100`) and on one split 90/10 across two
 *     warm revisions. Reports req/s and p50/p99 side by side, and the ratio.
 *  2. Rollback time: from sending `POST …/rollback` to the first response served by the target
 *     revision, when the target is still warm (kept by a tag) and when it was retired (cold start).
 * Run: npm run build && node --import tsx bench/traffic.ts [requests=5000] [rounds=3]
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy, percentile, startNimbusProcess } from './support.js';

const [requests = '5000', rounds = '3'] = process.argv.slice(2);
const CLIENTS = 16;

function source(word: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-bench-src-'));
  writeFileSync(join(dir, 'index.js'), `export default { fetch: () => new Response('${word}') };\n`);
  return dir;
}

async function put(url: string, name: string, traffic: unknown): Promise<void> {
  const res = await fetch(`${url}/api/v1/functions/${name}/traffic`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ traffic }),
  });
  if (!res.ok) throw new Error(`traffic: ${await res.text()}`);
}

async function load(url: string, path: string, total: number): Promise<{ rps: number; p50: number; p99: number }> {
  const ms: number[] = [];
  let sent = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (sent < total) {
        sent++;
        const t = performance.now();
        await (await fetch(url + path)).arrayBuffer();
        ms.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  ms.sort((a, b) => a - b);
  return { rps: total / seconds, p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { url, child } = await startNimbusProcess();
  try {
    await deploy(url, source('one'), { name: 'single' });
    await deploy(url, source('one'), { name: 'split' });
    await deploy(url, source('two'), { name: 'split' });
    await put(url, 'split', [
      { revision: 'r1', percent: 90 },
      { revision: 'r2', percent: 10 },
    ]);
    // Warm both sides first: a full round each, so the autoscaler has settled both at their size.
    await load(url, '/fn/single/', Number(requests));
    await load(url, '/fn/split/', Number(requests));

    const single: Awaited<ReturnType<typeof load>>[] = [];
    const split: Awaited<ReturnType<typeof load>>[] = [];
    for (let i = 0; i < Number(rounds); i++) {
      single.push(await load(url, '/fn/single/', Number(requests)));
      split.push(await load(url, '/fn/split/', Number(requests)));
    }
    const row = (name: string, xs: typeof single) =>
      `| ${name} | ${median(xs.map((x) => x.rps)).toFixed(0)} | ${median(xs.map((x) => x.p50)).toFixed(2)} | ${median(xs.map((x) => x.p99)).toFixed(2)} |`;
    console.log(`\nWeighted routing, ${CLIENTS} clients, ${requests} requests × ${rounds} rounds (medians):\n`);
    console.log('| function | req/s | p50 ms | p99 ms |\n| --- | --- | --- | --- |');
    console.log(row('one revision (latest=100)', single));
    console.log(row('90/10 across two revisions', split));
    console.log(
      `ratio split / single req/s: ${(median(split.map((x) => x.rps)) / median(single.map((x) => x.rps))).toFixed(3)}`,
    );

    // Rollback time: r1 <-> r2, the target kept warm by a tag, then with no tag (retired, cold).
    for (const warm of [true, false]) {
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        const [to, word] = i % 2 === 0 ? ['r1', 'one'] : ['r2', 'two'];
        const tags = warm
          ? [
              { revision: 'r1', percent: 0, tag: 'a' },
              { revision: 'r2', percent: 0, tag: 'b' },
            ]
          : [];
        const from = to === 'r1' ? 'r2' : 'r1';
        await put(url, 'split', [{ revision: from, percent: 100 }, ...tags]);
        await load(url, '/fn/split/', 50);
        if (!warm) await new Promise((r) => setTimeout(r, 1500)); // the retired side drains and stops
        const t = performance.now();
        const res = await fetch(`${url}/api/v1/functions/split/rollback`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ revision: to }),
        });
        await res.arrayBuffer();
        const body = await (await fetch(`${url}/fn/split/`)).text();
        times.push(performance.now() - t);
        if (body !== word) throw new Error(`after rollback to ${to} got ${body}`);
      }
      times.sort((a, b) => a - b);
      console.log(
        `rollback → first response from the target, target ${warm ? 'warm (tagged)' : 'retired (cold start)'}: median ${median(times).toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms (10 rollbacks)`,
      );
    }
  } finally {
    child.kill('SIGTERM');
  }
}

await main();
