// The guest's side of a warm request: starts dist/guest/function.mjs on its own (no sandbox, so
// `node --cpu-prof` can write its profile) with the hello fixture, drives it through the framed
// channel with the gateway's request head (16 in flight) and prints CPU µs per request of the
// guest and of this process (channel + driver), medians of alternating rounds. With
// BEFORE=/path/to/another/nimbus/checkout (built), that checkout's guest runs beside this one's;
// with PROFILE=dir, each guest writes a .cpuprofile there (read it with bench/profile-summary.ts).
// Run: npm run build && node --import tsx bench/profile-guest.ts [requests=20000] [rounds=5]
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLazyRequest } from '../src/runtime/channel/index.js';
import type { Channel } from '../src/runtime/process/channel.js';
import { createFramedChannel } from '../src/runtime/process/channel-framed.js';
import { ROOT, startBareGuest } from './support.js';

const [requests = '20000', rounds = '5'] = process.argv.slice(2);
const TOTAL = Number(requests);
const dir = mkdtempSync(join(tmpdir(), 'nimbus-bench-guest-'));
const profileDir = process.env.PROFILE;
if (profileDir) mkdirSync(profileDir, { recursive: true });

interface Target {
  name: string;
  guest: ChildProcess;
  channel: Channel;
  guestUs: number[];
  hostUs: number[];
  rps: number[];
}

async function start(name: string, root: string): Promise<Target> {
  const socketPath = join(dir, `${name}.sock`);
  const flags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name)] : [];
  const guest = await startBareGuest(root, socketPath, flags);
  return { name, guest, channel: createFramedChannel(socketPath, name), guestUs: [], hostUs: [], rps: [] };
}

const TICK_US = 10_000; // CLK_TCK is 100 on Linux
const cpuOf = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
};
// What the gateway sends for a `wrk` request: its headers plus the platform's.
const request = (i: number) =>
  createLazyRequest({
    method: 'GET',
    host: '127.0.0.1:8080',
    path: '/',
    headers: [
      ...['host', '127.0.0.1:8080', 'user-agent', 'wrk', 'x-forwarded-host', '127.0.0.1:8080'],
      ...['x-forwarded-proto', 'http', 'x-forwarded-for', '127.0.0.1'],
      ...['x-nimbus-request-id', `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`],
      ...['x-nimbus-deadline', String(Date.now() + 30_000)],
    ],
    body: null,
  });

async function round(t: Target, count: number): Promise<void> {
  let sent = 0;
  const worker = async () => {
    while (sent < count) {
      const response = await t.channel.fetch(request(sent++));
      await response.text();
    }
  };
  const host = process.cpuUsage();
  const guest = cpuOf(t.guest.pid!);
  const started = performance.now();
  await Promise.all(Array.from({ length: 16 }, worker));
  t.rps.push((count / (performance.now() - started)) * 1000);
  const h = process.cpuUsage(host);
  t.hostUs.push((h.user + h.system) / count);
  t.guestUs.push((cpuOf(t.guest.pid!) - guest) / count);
}

const targets: Target[] = [];
if (process.env.BEFORE) targets.push(await start('before', process.env.BEFORE));
targets.push(await start(process.env.BEFORE ? 'after' : 'guest', ROOT));
for (const t of targets) await round(t, TOTAL / 4); // warm-up
for (const t of targets) {
  t.guestUs = [];
  t.hostUs = [];
  t.rps = [];
}
for (let i = 0; i < Number(rounds); i++) for (const t of targets) await round(t, TOTAL);
for (const t of targets) {
  await t.channel.close();
  t.guest.kill('SIGTERM');
  await once(t.guest, 'exit');
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${TOTAL} requests × ${rounds} alternating rounds, 16 in flight, medians`);
console.log('| guest | req/s | guest CPU µs/req | host (channel + driver) CPU µs/req |');
console.log('| --- | --- | --- | --- |');
for (const t of targets)
  console.log(
    `| ${t.name} | ${median(t.rps).toFixed(0)} | ${median(t.guestUs).toFixed(1)} | ${median(t.hostUs).toFixed(1)} |`,
  );
