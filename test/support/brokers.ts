import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { eventually, startTestNode, type TestNode, writeSource } from './nimbus.js';

/** A unique suffix for queue, topic and stream names: tests share the machine's brokers. */
export const RUN = `${process.pid}-${Date.now().toString(36)}`;

/** Answers with the CloudEvents headers and the body it received (kept as the invocation result). */
export const recorderSource = (ms = 0) =>
  writeSource({
    'index.js': `export default { fetch: async (r) => {
      ${ms ? `await new Promise((res) => setTimeout(res, ${ms}));` : ''}
      return Response.json({
        id: r.headers.get('ce-id'), type: r.headers.get('ce-type'), source: r.headers.get('ce-source'),
        specversion: r.headers.get('ce-specversion'), time: r.headers.get('ce-time'), subject: r.headers.get('ce-subject'),
        contentType: r.headers.get('content-type'), body: await r.text() }); } };`,
    'nimbus.yaml': 'name: recorder\n',
  });

/** Always fails (500): its events go through the retries into the DLQ. */
export const failerSource = () =>
  writeSource({
    'index.js': `export default { fetch: () => new Response('broken', { status: 500 }) };`,
    'nimbus.yaml': 'name: failer\n',
  });

const NODE_OPTIONS = { async: { retryBaseDelayMs: 50 } };

/** A node with `recorder` (sleeping `ms` per event) and `failer` (one retry, 50 ms apart) deployed. */
export async function brokerTestNode(ms = 0): Promise<BrokerHarness> {
  const node = await startTestNode(NODE_OPTIONS);
  assert.equal((await node.deploy(recorderSource(ms))).status, 201);
  assert.equal((await node.deploy(failerSource())).status, 201);
  const put = await node.call('/api/v1/functions/failer/async-config', {
    method: 'PUT',
    body: JSON.stringify({ maxRetries: 1 }),
  });
  assert.equal(put.status, 200);
  return harness(node);
}

export interface BrokerHarness {
  /** The current node (a new object after `restart`). */
  readonly node: TestNode;
  /** Stops the node, runs `whileDown`, and starts it again on the same data (its triggers come back). */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** Stops the node and deletes its data. */
  dispose(): Promise<void>;
  /** POST /api/v1/triggers, asserting 201. */
  addTrigger(body: Record<string, unknown>): Promise<any>;
  /** POST /api/v1/triggers expecting a 400: its error message. */
  rejected(body: Record<string, unknown>): Promise<string>;
  /** Waits until the trigger reports healthy. */
  healthy(id: string, timeoutMs?: number): Promise<void>;
  status(id: string): Promise<any>;
  /** What the recorder saw, one entry per succeeded invocation, with its attempts. */
  seen(filter?: (e: any) => boolean): Promise<any[]>;
  /** Waits until what the recorder saw (filtered) satisfies `until`, and returns it. */
  waitSeen(filter: (e: any) => boolean, until: (all: any[]) => boolean, timeoutMs?: number): Promise<any[]>;
  dlq(fn: string): Promise<any[]>;
  /** A trigger pointed at a closed port: unhealthy with ECONNREFUSED, the node still serving; then removed. */
  expectUnreachable(type: string, config: Record<string, unknown>): Promise<any>;
}

function harness(first: TestNode): BrokerHarness {
  let node = first;
  const dataDir = first.dataDir;
  const status = async (id: string) => (await node.json(`/api/v1/triggers/${id}`)).status;
  const seen = async (filter: (e: any) => boolean = () => true): Promise<any[]> => {
    const { invocations } = await node.json('/api/v1/functions/recorder/invocations?state=succeeded&limit=10000');
    return invocations
      .map((v: any) => ({ ...JSON.parse(v.result.body), attempts: v.attempts, invocation: v.id }))
      .filter(filter);
  };
  return {
    get node() {
      return node;
    },
    async restart(whileDown) {
      await node.close();
      await whileDown?.();
      node = await startTestNode({ dataDir, ...NODE_OPTIONS });
    },
    async dispose() {
      await node.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
    async addTrigger(body) {
      const res = await node.call('/api/v1/triggers', { method: 'POST', body: JSON.stringify(body) });
      const json = await res.json();
      assert.equal(res.status, 201, JSON.stringify(json));
      return json;
    },
    async rejected(body) {
      const res = await node.call('/api/v1/triggers', { method: 'POST', body: JSON.stringify(body) });
      assert.equal(res.status, 400);
      return ((await res.json()) as any).error.message;
    },
    async healthy(id, timeoutMs = 15_000) {
      await eventually(async () => (await status(id)).healthy, timeoutMs, `${id} healthy`);
    },
    status,
    seen,
    async waitSeen(filter, until, timeoutMs = 10_000) {
      return eventually<any[]>(
        async () => {
          const all = await seen(filter);
          return until(all) ? all : (undefined as unknown as any[]);
        },
        timeoutMs,
        'the function to see the events',
      );
    },
    async expectUnreachable(type, config) {
      const t = await this.addTrigger({ id: `${type}-down-${RUN}`, type, function: 'recorder', config });
      const s = await eventually(async () => {
        const st = await status(t.id);
        return st.lastError && !/connecting/.test(st.lastError) && st;
      });
      assert.equal(s.healthy, false);
      assert.match(s.lastError, /ECONNREFUSED/);
      assert.equal((await node.call('/healthz')).status, 200);
      const view = await node.json(`/api/v1/triggers/${t.id}`);
      assert.equal((await node.call(`/api/v1/triggers/${t.id}`, { method: 'DELETE' })).status, 200);
      return view;
    },
    async dlq(fn) {
      return (await node.json(`/api/v1/functions/${fn}/dlq`)).invocations;
    },
  };
}

/** A free TCP port on loopback (for a throwaway broker). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`. */
export function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  return eventually(
    () =>
      new Promise<boolean>((resolve) => {
        const s = createConnection({ port, host: '127.0.0.1' });
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    timeoutMs,
    `port ${port} to accept connections`,
  ).then(() => {});
}

/** Spawns a broker process and waits for its port; its output is kept for failure messages. */
export async function spawnBroker(cmd: string, args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const died = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${cmd} exited (${code}): ${out}`))),
  );
  died.catch(() => {});
  await Promise.race([waitForPort(port), died]);
  return child;
}

/** Sends `signal` and waits for the process to be gone. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/**
 * A TCP proxy to a shared broker: `cut()` drops every connection through it at once — the broker
 * going away, as its clients see it — without touching the broker other tests are using.
 */
export async function tcpProxy(targetPort: number): Promise<{ port: number; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ port: targetPort, host: '127.0.0.1' });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Delivery report for a stream of `published` bodies: which acknowledged ones never reached the
 * function (`lost`), and the extra runs at least once allows (`duplicates`), split into
 * `redelivered` (a body seen under more than one invocation: the broker delivered it again under a
 * new id) and `reattempted` (an invocation that took more than one attempt).
 */
export function deliveryReport(
  published: string[],
  seen: any[],
): { lost: string[]; duplicates: number; redelivered: number; reattempted: number } {
  const count = new Map<string, number>();
  let reattempted = 0;
  for (const e of seen) {
    count.set(e.body, (count.get(e.body) ?? 0) + 1);
    reattempted += Math.max(0, (e.attempts ?? 1) - 1);
  }
  const lost = published.filter((b) => !count.has(b));
  const redelivered = [...count.values()].reduce((n, c) => n + c - 1, 0);
  return { lost, duplicates: redelivered + reattempted, redelivered, reattempted };
}
