// Warm throughput and latency of a hello function through the gateway vs. the same handler on a
// bare node:http server, side by side in one run (rounds alternate so drift hits both alike), with
// the CPU each process spent per request (from /proc: on 2 cores wrk, gateway and guest share the
// CPU, so req/s alone hides where the time goes).
// Run: npm run build && node --import tsx bench/gateway.ts [seconds=5] [connections=16] [rounds=3]
// Optional: BEFORE=/path/to/another/nimbus/checkout (built) adds that build as a third target,
// for a before/after table from one run (several, comma-separated: each named by its folder). FLOOR=1 adds bench/fixtures/floor-proxy.ts (node:http
// + the framed channel to an unsandboxed guest, no platform work): the floor of this design, and
// with FLOOR_WORKERS=1,2 that proxy in one and in two processes sharing the port. METRICS_OFF=1 adds this checkout three times more: with
// observability off (--no-metrics --no-request-logs), without request logs, and with tracing on
// too (--otlp-endpoint to an in-process OTLP sink), to measure what metrics, usage metering,
// request logs and traces each cost. ISOLATE=1 adds the same hello as `runtime: isolate` (a V8
// isolate inside the node's process: no guest process, no channel hop).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { deploy, ROOT, spawnUntil, startNimbusProcess } from './support.js';

const [seconds = '5', connections = '16', rounds = '3'] = process.argv.slice(2);
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  /** CPU µs per request, per process name. */
  cpu: Record<string, number>;
}

/** utime + stime of a process, in µs. */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

/**
 * Node processes under `pid` (at any depth: a sandboxed guest runs below bwrap / setpriv) whose
 * command line matches `pattern`.
 */
function descendantsOf(pid: number, pattern: RegExp): number[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm=,args='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => {
      const [p, pp, comm, ...args] = line.trim().split(/\s+/);
      return { pid: Number(p), ppid: Number(pp), comm: comm!, args: args.join(' ') };
    });
  const below = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const row of rows)
      if (below.has(row.ppid) && !below.has(row.pid)) {
        below.add(row.pid);
        grew = true;
      }
  }
  return rows
    .filter((r) => r.pid !== pid && below.has(r.pid) && r.comm === 'node' && pattern.test(r.args))
    .map((r) => r.pid);
}

const GUEST = /guest\/(function|cell)\.mjs/;
// bwrap's own command line names the guest file too: only a `node` process is the guest.
const isGuest = (pid: number) =>
  readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node' &&
  GUEST.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));

function wrk(url: string, pids: Record<string, number>): WrkResult {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuOf(pid)]));
  const out = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  const ms = (label: string) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) throw new Error(`no ${label}% in wrk output:\n${out}`);
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'];
  };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) throw new Error(`${non2xx[1]} error responses from ${url}`);
  const total = Number(/(\d+) requests in/.exec(out)![1]);
  const cpu = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, (cpuOf(pid) - before[name]!) / total]),
  );
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p50: ms('50'), p99: ms('99'), cpu };
}

async function nimbusTarget(root: string, extraArgs: string[] = [], runtime?: 'isolate') {
  const nimbus = await startNimbusProcess(root, extraArgs);
  await deploy(nimbus.url, join(ROOT, 'bench/fixtures/hello'), {
    name: 'hello',
    concurrency: 100,
    scale: { min: 1, max: 1 },
    ...(runtime ? { runtime } : {}),
  });
  const url = `${nimbus.url}/fn/hello/`;
  await fetch(url).then((r) => r.text());
  // An isolate runs inside the node's own process: there is no guest process to measure.
  if (runtime === 'isolate')
    return { url, child: nimbus.child, pids: { gateway: nimbus.child.pid! } as Record<string, number> };
  // The serving instance's process as the API reports it (bwrap's when sandboxed; the guest's Node
  // runs below it). Spare warm pool cells run the same guest/cell.mjs beside it and a fresh one
  // has used more CPU (its boot) than the warm-up request: only the API tells them apart.
  const listed = (await fetch(`${nimbus.url}/api/v1/functions/hello/instances`).then((r) => r.json())) as {
    instances?: { pid?: number }[];
  };
  const pid = listed.instances?.find((i) => i.pid)?.pid;
  if (!pid) throw new Error(`no instance pid in ${JSON.stringify(listed)}`);
  const guest = isGuest(pid) ? pid : descendantsOf(pid, GUEST)[0];
  if (!guest) throw new Error('no guest process found');
  return { url, child: nimbus.child, pids: { gateway: nimbus.child.pid!, guest } };
}

const bare = await spawnUntil(process.execPath, [join(ROOT, 'bench/fixtures/bare-server.mjs')], /listening (\d+)/);
const targets: { name: string; url: string; pids: Record<string, number> }[] = [
  { name: 'bare node:http', url: `http://127.0.0.1:${bare.match[1]}/`, pids: { server: bare.child.pid! } },
];
const children = [bare.child];
try {
  // BEFORE=/a,/b: several other builds (variants of one experiment), each named by its folder.
  const others = process.env.BEFORE?.split(',').filter(Boolean) ?? [];
  for (const root of others) {
    const before = await nimbusTarget(root);
    children.push(before.child);
    targets.push({ name: `nimbus gateway (${others.length > 1 ? basename(root) : 'before'})`, ...before });
  }
  if (process.env.METRICS_OFF) {
    // Side by side: the same checkout with metrics, usage metering and request logs off…
    const off = await nimbusTarget(ROOT, ['--no-metrics', '--no-request-logs']);
    children.push(off.child);
    targets.push({ name: 'nimbus gateway (observability off)', ...off });
    const noLogs = await nimbusTarget(ROOT, ['--no-request-logs']);
    children.push(noLogs.child);
    targets.push({ name: 'nimbus gateway (no request logs)', ...noLogs });
    // …and with every request traced too, exported to a receiver that accepts and drops.
    const sink = createServer((req, res) => req.resume().on('end', () => res.end('{}')));
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    sink.unref();
    const traced = await nimbusTarget(ROOT, [
      '--otlp-endpoint',
      `http://127.0.0.1:${(sink.address() as AddressInfo).port}`,
    ]);
    children.push(traced.child);
    targets.push({ name: 'nimbus gateway (+ tracing)', ...traced });
  }
  for (const workers of process.env.FLOOR ? (process.env.FLOOR_WORKERS ?? '1').split(',') : []) {
    const floor = await spawnUntil(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'bench/fixtures/floor-proxy.ts')],
      /listening (\d+) (\d+) ([\d ]+)\n/,
      { FLOOR_WORKERS: workers },
    );
    children.push(floor.child);
    const proxies = floor.match[3]!.trim().split(' ').map(Number);
    targets.push({
      name: `floor: node:http + channel, no platform${proxies.length > 1 ? ` (${proxies.length} processes)` : ''}`,
      url: `http://127.0.0.1:${floor.match[1]}/`,
      pids: {
        ...Object.fromEntries(proxies.map((pid, i) => [proxies.length > 1 ? `proxy${i + 1}` : 'proxy', pid])),
        guest: Number(floor.match[2]),
      },
    });
  }
  if (process.env.ISOLATE) {
    const isolate = await nimbusTarget(ROOT, [], 'isolate');
    children.push(isolate.child);
    targets.push({ name: 'nimbus gateway, runtime: isolate', ...isolate });
  }
  const after = await nimbusTarget(ROOT);
  children.push(after.child);
  targets.push({ name: process.env.BEFORE ? 'nimbus gateway (after)' : 'nimbus gateway', ...after });
} catch (err) {
  for (const child of children) child.kill('SIGTERM');
  throw err;
}

const results = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
try {
  for (let i = 0; i < Number(rounds); i++) for (const t of targets) results.get(t.name)!.push(wrk(t.url, t.pids));
} finally {
  for (const child of children) child.kill('SIGTERM');
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const med = (name: string, pick: (r: WrkResult) => number) => median(results.get(name)!.map(pick));
const bareRps = med('bare node:http', (r) => r.rps);
const bareP50 = med('bare node:http', (r) => r.p50);
console.log(`wrk -t1 -c${connections} -d${seconds}s, ${rounds} alternating rounds, medians`);
console.log('| target | req/s | vs bare | p50 ms | added p50 ms | p99 ms | CPU µs/req |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const { name } of targets) {
  const rps = med(name, (r) => r.rps);
  const p50 = med(name, (r) => r.p50);
  const cpu = Object.keys(results.get(name)![0]!.cpu)
    .map((proc) => `${proc} ${med(name, (r) => r.cpu[proc]!).toFixed(0)}`)
    .join(', ');
  console.log(
    `| ${name} | ${rps.toFixed(0)} | ${((rps / bareRps) * 100).toFixed(0)}% | ${p50.toFixed(3)} | ${(p50 - bareP50).toFixed(3)} | ${med(name, (r) => r.p99).toFixed(3)} | ${cpu} |`,
  );
}
