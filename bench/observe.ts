// What observability costs one warm request, measured in-process where a loaded machine blurs it
// least: the gateway's per-request hooks (metrics, usage metering, the request log record, and a
// traced request's spans) called with synthetic records, CPU µs per request from process.cpuUsage.
// Compare with the gateway's CPU per request in bench/gateway.ts (METRICS_OFF=1 for the same on/off
// comparison end to end). Run: node --import tsx bench/observe.ts [requests=2000] [rounds=9]
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InvocationRecord } from '../src/gateway/gateway.js';
import { createLogStore, requestRecord } from '../src/observe/log-store.js';
import { createMetrics } from '../src/observe/metrics.js';
import { createTracer } from '../src/observe/tracing.js';
import { createUsageMeter } from '../src/observe/usage.js';

const [requests = '2000', rounds = '9'] = process.argv.slice(2);
const N = Number(requests);

const sink = createServer((req, res) => req.resume().on('end', () => res.end('{}')));
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const metrics = createMetrics({ instances: () => [], waiting: () => new Map(), inFlight: () => 0 });
// Real files, as a node has them: the write-ahead log and page writes are part of the cost.
const dir = mkdtempSync(join(tmpdir(), 'nimbus-bench-observe-'));
const usage = createUsageMeter({ path: join(dir, 'usage.db') });
const logs = createLogStore({ path: join(dir, 'logs.db') });
const tracer = createTracer({ endpoint: `http://127.0.0.1:${(sink.address() as AddressInfo).port}` });

const record = (i: number): InvocationRecord => ({
  requestId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  function: 'hello',
  revision: 'r1',
  status: 200,
  durationMs: 0.8,
  cold: false,
  instance: 'hello-r1_abc',
  egressBytes: 180,
  wait: { fromMs: 0.01, toMs: 0.02 },
});

const variants: Record<string, (i: number) => void> = {
  'metrics + usage': (i) => {
    const r = record(i);
    metrics.onInvocation(r);
    usage.record({ function: r.function, time: Date.now(), durationMs: r.durationMs, memoryMb: 128, cold: false });
  },
  'request log record': (i) => logs.append(requestRecord(record(i), Date.now())),
  'trace (4 spans, OTLP export)': (i) => {
    const t = tracer.start('hello', undefined);
    tracer.end(t, { ...record(i), traceId: t.traceId });
  },
  baseline: (i) => record(i),
};

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const results = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
for (let round = 0; round < Number(rounds); round++) {
  for (const [name, fn] of Object.entries(variants)) {
    const start = cpuUs();
    for (let i = 0; i < N; i++) fn(i);
    // Let batched writes and exports run, inside the measurement: they are part of the cost.
    await new Promise((r) => setTimeout(r, 1100));
    results.get(name)!.push((cpuUs() - start) / N);
  }
}
await tracer.shutdown();
logs.close();
usage.close();
sink.close();
rmSync(dir, { recursive: true, force: true });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(results.get('baseline')!);
console.log(`${N} requests × ${rounds} rounds, median CPU µs per request (baseline subtracted)`);
console.log('| hook | CPU µs/req |');
console.log('| --- | --- |');
for (const [name, xs] of results)
  if (name !== 'baseline') console.log(`| ${name} | ${(median(xs) - base).toFixed(2)} |`);
