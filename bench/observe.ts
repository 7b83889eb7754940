// What observability costs one warm request, measured in-process where a loaded machine blurs it
// least: the gateway's per-request hooks (metrics, usage metering, the request log record, and a
// traced request's spans) called with synthetic records. Two columns: the main thread's own CPU
// (what the gateway's one busy thread pays: from /proc's per-thread accounting, in ns) and the
// whole process's (process.cpuUsage: also the log writer thread and V8's helper threads).
// Compare with the gateway's CPU per request in bench/gateway.ts (METRICS_OFF=1 for the same on/off
// comparison end to end). Then the log batch's transfer encodings, main-thread µs per record.
// Run: node --import tsx bench/observe.ts [requests=2000] [rounds=9]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type { InvocationRecord } from '../src/gateway/gateway.js';
import { encodeBatch } from '../src/observe/log-batch.js';
import { createLogStore, type LogRecord, requestRecord } from '../src/observe/log-store.js';
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
const mainThreadUs = () =>
  Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
const results = new Map<string, { main: number[]; all: number[] }>(
  Object.keys(variants).map((k) => [k, { main: [], all: [] }]),
);
for (let round = 0; round < Number(rounds); round++) {
  for (const [name, fn] of Object.entries(variants)) {
    const main = mainThreadUs();
    const all = cpuUs();
    for (let i = 0; i < N; i++) fn(i);
    // Let batched writes and exports run, inside the measurement: they are part of the cost.
    await new Promise((r) => setTimeout(r, 1100));
    results.get(name)!.main.push((mainThreadUs() - main) / N);
    results.get(name)!.all.push((cpuUs() - all) / N);
  }
}
await tracer.shutdown();
await logs.close();
usage.close();
sink.close();
rmSync(dir, { recursive: true, force: true });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = results.get('baseline')!;
console.log(`${N} requests × ${rounds} rounds, median CPU µs per request (baseline subtracted)`);
console.log('| hook | main thread µs/req | whole process µs/req |');
console.log('| --- | --- | --- |');
for (const [name, { main, all }] of results) {
  if (name === 'baseline') continue;
  const cell = (xs: number[], b: number[]) => (median(xs) - median(b)).toFixed(2);
  console.log(`| ${name} | ${cell(main, base.main)} | ${cell(all, base.all)} |`);
}

// How a flush's records reach the writer thread: what posting 1,000 request records costs the
// main thread, encoded each way (log-batch.ts uses the columns).
const { port1, port2 } = new MessageChannel();
port2.on('message', () => {});
const batches = Array.from({ length: 50 }, (_, b) =>
  Array.from({ length: 1000 }, (_, i) => requestRecord(record(b * 1000 + i), Date.now())),
);
const encodings: Record<string, (b: LogRecord[]) => void> = {
  'structured clone of the records': (b) => port1.postMessage(b),
  'one JSON string': (b) => port1.postMessage(JSON.stringify(b)),
  'columns (encodeBatch)': (b) => port1.postMessage(encodeBatch(b)),
};
const perRecord = new Map<string, number[]>(Object.keys(encodings).map((k) => [k, []]));
for (let round = 0; round < Number(rounds); round++)
  for (const [name, post] of Object.entries(encodings)) {
    const start = mainThreadUs();
    for (const b of batches) post(b);
    perRecord.get(name)!.push((mainThreadUs() - start) / (batches.length * 1000));
    await new Promise((r) => setTimeout(r, 50));
  }
port1.close();
console.log('\n| batch encoding | main thread µs/record |');
console.log('| --- | --- |');
for (const [name, xs] of perRecord) console.log(`| ${name} | ${median(xs).toFixed(2)} |`);
