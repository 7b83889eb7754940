/**
 * What it measures, in one run (machine: say whether it was busy):
 *  1. Step load 1 → 10× concurrency through a real node (nimbus serve as its own process, the
 *     echo fixture answering /sleep?ms=SLEEP, concurrency 10 so 7 in flight per instance is the
 *     aim): LOW closed-loop clients for a while (1 instance), then 10 × LOW. Reports the time from
 *     the step until the autoscaler wants the final count and until that many are ready, and
 *     p50/p99 latency during the ramp and after it, beside the same 10× load on a revision kept
 *     warm at that count (scale.min) — the floor a perfect autoscaler would reach.
 *  2. Activator overhead on a warm path, in-process against one real instance: requests sent
 *     straight to the instance vs through the instance manager (lease: slot pick, collector,
 *     queue check; never queued), 16 in flight, rounds alternating.
 * Run: npm run build && node --import tsx bench/autoscale.ts [stepSeconds=20] [requests=20000]
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createManualClock } from '../src/core/clock.js';
import { createInstanceManager } from '../src/instances/index.js';
import type { RevisionPlan } from '../src/instances/types.js';
import { createProcessRuntime } from '../src/runtime/index.js';
import { deploy, percentile, ROOT, startNimbusProcess } from './support.js';

const [stepSeconds = '20', totalRequests = '20000'] = process.argv.slice(2);
const ECHO = join(ROOT, 'test/fixtures/apps/echo');
const LOW = 7;
const HIGH = 70;
const SLEEP = 200;

interface Sample {
  at: number;
  ms: number;
  ok: boolean;
}

/** `clients` closed-loop clients calling `path` until `until()` says stop. */
async function load(url: string, path: string, clients: number, stop: () => boolean, out: Sample[]): Promise<void> {
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (!stop()) {
        const t = performance.now();
        const res = await fetch(url + path);
        await res.arrayBuffer();
        out.push({ at: t, ms: performance.now() - t, ok: res.status === 200 });
      }
    }),
  );
}

const stats = (s: Sample[]) => {
  const ms = s.map((x) => x.ms).sort((a, b) => a - b);
  return {
    n: s.length,
    errors: s.filter((x) => !x.ok).length,
    p50: ms.length ? percentile(ms, 50) : Number.NaN,
    p99: ms.length ? percentile(ms, 99) : Number.NaN,
  };
};
const fmt = (n: number) => (Number.isNaN(n) ? '-' : n.toFixed(1));

async function stepLoad(): Promise<void> {
  const { url, child } = await startNimbusProcess();
  try {
    await deploy(url, ECHO, { name: 'step', concurrency: 10, timeout: 60, scale: { max: 20 } });
    await deploy(url, ECHO, { name: 'warm', concurrency: 10, timeout: 60, scale: { min: 10, max: 20 } });
    const path = (fn: string) => `/fn/${fn}/sleep?ms=${SLEEP}`;
    const view = async () =>
      ((await (await fetch(`${url}/api/v1/functions/step/scale`)).json()) as any).revisions[0] as {
        desired: number;
        ready: number;
        panic: boolean;
      };

    // Phase 1: LOW in flight for 10 s (one instance).
    let phase = 1;
    const before: Sample[] = [];
    const high: Sample[] = [];
    const lowDone = load(url, path('step'), LOW, () => phase === 3, before);
    await new Promise((r) => setTimeout(r, 10_000));
    const v1 = await view();
    // Phase 2: 10× (LOW keep going, HIGH - LOW more).
    phase = 2;
    const t0 = performance.now();
    const highDone = load(url, path('step'), HIGH - LOW, () => phase === 3, high);
    let desiredAt: number | undefined;
    let readyAt: number | undefined;
    let final = 0;
    const trail: string[] = [];
    while (performance.now() - t0 < Number(stepSeconds) * 1000) {
      const v = await view();
      const t = (performance.now() - t0) / 1000;
      if (trail.length === 0 || !trail[trail.length - 1]!.endsWith(`${v.desired}/${v.ready}${v.panic ? 'P' : ''}`))
        trail.push(`${t.toFixed(1)}s:${v.desired}/${v.ready}${v.panic ? 'P' : ''}`);
      final = Math.max(final, v.desired);
      if (desiredAt === undefined && v.desired >= 10) desiredAt = t;
      if (readyAt === undefined && v.ready >= 10) readyAt = t;
      await new Promise((r) => setTimeout(r, 100));
    }
    phase = 3;
    await Promise.all([lowDone, highDone]);
    const all = [...before, ...high];
    const rampEnd = t0 + (readyAt ?? Number(stepSeconds)) * 1000;
    const ramp = all.filter((s) => s.at >= t0 && s.at < rampEnd);
    const after = all.filter((s) => s.at >= rampEnd);
    const steady = before.filter((s) => s.at < t0);

    // The floor: HIGH on a revision already warm at 10.
    const warm: Sample[] = [];
    const until = performance.now() + 8000;
    await load(url, path('warm'), HIGH, () => performance.now() > until, warm);

    console.log(`step load ${LOW} -> ${HIGH} in flight, /sleep?ms=${SLEEP}, concurrency 10 (target 7 per instance)`);
    console.log(`before the step: desired ${v1.desired}, ready ${v1.ready}`);
    console.log(
      `desired >= 10 after ${fmt((desiredAt ?? Number.NaN) * 1000)} ms; ready >= 10 after ${fmt((readyAt ?? Number.NaN) * 1000)} ms; most desired ${final}`,
    );
    console.log(`trail (desired/ready, P = panic): ${trail.join(' ')}`);
    console.log('phase                      requests  errors   p50 ms   p99 ms');
    for (const [name, s] of [
      ['steady at 7 (before)', steady],
      ['ramp (step -> ready)', ramp],
      ['after the ramp', after],
      ['70 on 10 warm (floor)', warm],
    ] as const) {
      const st = stats(s);
      console.log(
        `${name.padEnd(26)} ${String(st.n).padStart(8)} ${String(st.errors).padStart(7)} ${fmt(st.p50).padStart(8)} ${fmt(st.p99).padStart(8)}`,
      );
    }
  } finally {
    child.kill('SIGTERM');
  }
}

async function activatorOverhead(): Promise<void> {
  writeFileSync(join(tmpdir(), 'nimbus-bench-autoscale.mjs'), "export default () => new Response('ok');\n");
  const runtime = createProcessRuntime();
  const clock = createManualClock(Date.now());
  const manager = createInstanceManager({ runtime, clock, freezeAfterMs: 0 });
  const plan: RevisionPlan = {
    key: 'bench/r1',
    function: 'bench',
    revision: 'r1',
    concurrency: 64,
    scale: { min: 1, max: 1, idleTimeout: 300 },
    spec: {
      function: 'bench',
      revision: 'r1',
      kind: 'node',
      artifactDir: tmpdir(),
      entry: 'nimbus-bench-autoscale.mjs',
      env: {},
      memoryMb: 256,
      timeoutMs: 30_000,
    },
  };
  try {
    const first = await manager.acquire(plan);
    const instance = first.instance;
    first.release();
    const request = () => new Request('http://fn/');
    const direct = async () => {
      const res = await instance.fetch(request());
      await res.arrayBuffer();
    };
    const managed = async () => {
      const lease = await manager.acquire(plan);
      try {
        const res = await lease.instance.fetch(request());
        await res.arrayBuffer();
      } finally {
        lease.release();
      }
    };
    const run = async (one: () => Promise<void>, n: number) => {
      const lat: number[] = [];
      let left = n;
      const t = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (left-- > 0) {
            const s = performance.now();
            await one();
            lat.push(performance.now() - s);
          }
        }),
      );
      const secs = (performance.now() - t) / 1000;
      lat.sort((a, b) => a - b);
      return { rps: n / secs, p50: percentile(lat, 50), p99: percentile(lat, 99) };
    };
    const n = Math.floor(Number(totalRequests) / 6);
    await run(direct, 1000);
    await run(managed, 1000);
    const rows: Record<string, { rps: number; p50: number; p99: number }[]> = { direct: [], managed: [] };
    for (let round = 0; round < 3; round++) {
      rows.direct!.push(await run(direct, n));
      rows.managed!.push(await run(managed, n));
    }
    const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`\nactivator overhead, warm path, 16 in flight, ${n} requests x 3 rounds (median of rounds)`);
    console.log('path                         req/s   p50 ms   p99 ms');
    for (const [name, r] of Object.entries(rows))
      console.log(
        `${(name === 'direct' ? 'straight to the instance' : 'through manager (lease)').padEnd(26)} ${med(
          r.map((x) => x.rps),
        )
          .toFixed(0)
          .padStart(7)} ${med(r.map((x) => x.p50))
          .toFixed(3)
          .padStart(8)} ${med(r.map((x) => x.p99))
          .toFixed(3)
          .padStart(8)}`,
      );
    const ratio = med(rows.managed!.map((x) => x.rps)) / med(rows.direct!.map((x) => x.rps));
    console.log(`through manager / direct throughput: ${ratio.toFixed(3)}`);
  } finally {
    await manager.close();
    await runtime.close();
  }
}

await stepLoad();
await activatorOverhead();
