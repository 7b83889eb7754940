// Warm throughput and latency of a hello function through the gateway vs. the same handler on a
// bare node:http server, side by side in one run (rounds alternate so drift hits both alike).
// Run: npm run build && node --import tsx bench/gateway.ts [seconds=5] [connections=16] [rounds=3]
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { deploy, ROOT, spawnUntil, startNimbusProcess } from './support.js';

const [seconds = '5', connections = '16', rounds = '3'] = process.argv.slice(2);

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
}

function wrk(url: string): WrkResult {
  const out = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  const ms = (label: string) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) throw new Error(`no ${label}% in wrk output:\n${out}`);
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'];
  };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) throw new Error(`${non2xx[1]} error responses from ${url}`);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p50: ms('50'), p99: ms('99') };
}

const bare = await spawnUntil(process.execPath, [join(ROOT, 'bench/fixtures/bare-server.mjs')], /listening (\d+)/);
const bareUrl = `http://127.0.0.1:${bare.match[1]}/`;
const nimbus = await startNimbusProcess();
await deploy(nimbus.url, join(ROOT, 'bench/fixtures/hello'), {
  name: 'hello',
  concurrency: 100,
  scale: { min: 1, max: 1 },
});
const fnUrl = `${nimbus.url}/fn/hello/`;
await fetch(fnUrl).then((r) => r.text());

const results: { bare: WrkResult[]; gateway: WrkResult[] } = { bare: [], gateway: [] };
try {
  for (let i = 0; i < Number(rounds); i++) {
    results.bare.push(wrk(bareUrl));
    results.gateway.push(wrk(fnUrl));
  }
} finally {
  bare.child.kill();
  nimbus.child.kill('SIGTERM');
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const row = (name: string, r: WrkResult[]) =>
  `| ${name} | ${median(r.map((x) => x.rps)).toFixed(0)} | ${median(r.map((x) => x.p50)).toFixed(3)} | ${median(r.map((x) => x.p99)).toFixed(3)} |`;
console.log(`wrk -t1 -c${connections} -d${seconds}s, ${rounds} alternating rounds, medians`);
console.log('| target | req/s | p50 ms | p99 ms |\n| --- | --- | --- | --- |');
console.log(row('bare node:http', results.bare));
console.log(row('nimbus gateway', results.gateway));
const ratio = median(results.gateway.map((x) => x.rps)) / median(results.bare.map((x) => x.rps));
const added = median(results.gateway.map((x) => x.p50)) - median(results.bare.map((x) => x.p50));
console.log(`\ngateway / bare throughput: ${(ratio * 100).toFixed(0)}%   added p50: ${added.toFixed(3)} ms`);
