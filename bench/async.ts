// Async invocation end to end: N invocations of a trivial function enqueued over HTTP
// (`POST /async/fn/NAME`, C clients at once) into a `nimbus serve` process, timed from the first
// enqueue to the last `succeeded`, with the enqueue latency (202 answered = stored durably).
// Run: npm run build && node --import tsx bench/async.ts [invocations=4000] [clients=32] [rounds=3] [concurrency=10]
// Optional: BEFORE=/path/to/another/nimbus/checkout (built) runs that build too, rounds
// alternating, for a before/after table from one run. `concurrency` is the function's async
// concurrency (async-config); the node default is 10.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSource } from '../test/support/nimbus.js';
import { deploy, percentile, ROOT, startNimbusProcess } from './support.js';

const [n = '4000', clients = '32', rounds = '3', concurrency = '10'] = process.argv.slice(2).map(String);
const TOTAL = Number(n);

interface Round {
  enqueuePerS: number;
  p50: number;
  p99: number;
  completedPerS: number;
  /** CPU the node spent per invocation (µs), and its function instances: steadier than rates on a busy machine. */
  nodeCpuUs: number;
  guestCpuUs: number;
}

const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** utime + stime (µs) of `pid`, and of all its descendants. */
function cpuTree(pid: number): { self: number; below: number } {
  const procs = new Map<number, { ppid: number; cpu: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(entry), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) * TICK_US });
    } catch {
      // gone meanwhile
    }
  }
  const below = new Set<number>([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, info] of procs)
      if (below.has(info.ppid) && !below.has(p)) {
        below.add(p);
        grew = true;
      }
  }
  let sum = 0;
  for (const p of below) if (p !== pid) sum += procs.get(p)?.cpu ?? 0;
  return { self: procs.get(pid)?.cpu ?? 0, below: sum };
}

async function round(root: string): Promise<Round> {
  const { url, child } = await startNimbusProcess(root);
  try {
    const src = writeSource({
      'index.js': `export default { fetch: () => new Response('ok') };`,
      'nimbus.yaml': 'name: noop\n',
    });
    await deploy(url, src, {});
    const put = await fetch(`${url}/api/v1/functions/noop/async-config`, {
      method: 'PUT',
      body: JSON.stringify({ concurrency: Number(concurrency) }),
    });
    if (put.status !== 200) throw new Error(`async-config: ${put.status} ${await put.text()}`);
    // Warm: one instance up, one async invocation through.
    await (await fetch(`${url}/fn/noop/`)).text();
    const latencies: number[] = [];
    let next = 0;
    const cpu0 = cpuTree(child.pid!);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: Number(clients) }, async () => {
        while (next < TOTAL) {
          next++;
          const t0 = performance.now();
          const res = await fetch(`${url}/async/fn/noop/`, { method: 'POST', body: 'x' });
          await res.arrayBuffer();
          if (res.status !== 202) throw new Error(`enqueue: ${res.status}`);
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const enqueued = performance.now();
    for (;;) {
      const { counts } = (await (await fetch(`${url}/api/v1/functions/noop/invocations?limit=1`)).json()) as {
        counts: Record<string, number>;
      };
      if (counts.succeeded! >= TOTAL) break;
      if (counts.failed! + counts.dead! > 0) throw new Error(`failures: ${JSON.stringify(counts)}`);
      if (performance.now() - started > 300_000) throw new Error(`not done after 300 s: ${JSON.stringify(counts)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const done = performance.now();
    const cpu1 = cpuTree(child.pid!);
    latencies.sort((a, b) => a - b);
    return {
      enqueuePerS: TOTAL / ((enqueued - started) / 1000),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      completedPerS: TOTAL / ((done - started) / 1000),
      nodeCpuUs: (cpu1.self - cpu0.self) / TOTAL,
      guestCpuUs: (cpu1.below - cpu0.below) / TOTAL,
    };
  } finally {
    await stop(child);
  }
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const targets: [string, string][] = [['this checkout', ROOT]];
if (process.env.BEFORE) targets.push(['before', join(process.env.BEFORE)]);
const results = new Map<string, Round[]>(targets.map(([name]) => [name, []]));
for (let r = 0; r < Number(rounds); r++)
  for (const [name, root] of targets) {
    const res = await round(root);
    results.get(name)!.push(res);
    console.error(`round ${r + 1} ${name}: ${JSON.stringify(res)}`);
  }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `\n${TOTAL} async invocations, ${clients} clients, function concurrency ${concurrency}, median of ${rounds} rounds`,
);
console.log('target          completed/s  enqueue/s  enqueue p50  enqueue p99  node CPU/inv  guest CPU/inv');
for (const [name, rs] of results) {
  console.log(
    `${name.padEnd(15)} ${median(rs.map((x) => x.completedPerS))
      .toFixed(0)
      .padStart(11)}  ${median(rs.map((x) => x.enqueuePerS))
      .toFixed(0)
      .padStart(9)}  ${median(rs.map((x) => x.p50))
      .toFixed(1)
      .padStart(8)} ms  ${median(rs.map((x) => x.p99))
      .toFixed(1)
      .padStart(8)} ms  ${median(rs.map((x) => x.nodeCpuUs))
      .toFixed(0)
      .padStart(8)} µs  ${median(rs.map((x) => x.guestCpuUs))
      .toFixed(0)
      .padStart(9)} µs`,
  );
}
