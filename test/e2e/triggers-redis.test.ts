import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import {
  type BrokerHarness,
  brokerTestNode,
  deliveryReport,
  freePort,
  RUN,
  spawnBroker,
  stopProcess,
} from '../support/brokers.js';
import { eventually } from '../support/nimbus.js';

const SHARED = 'redis://127.0.0.1:6379';

describe('redis-streams trigger (real Redis)', () => {
  let h: BrokerHarness;
  let redis: ReturnType<typeof createClient>;
  const streams: string[] = [];
  before(async () => {
    h = await brokerTestNode(30);
    redis = createClient({ url: SHARED });
    await redis.connect();
  });
  after(async () => {
    if (streams.length) await redis.del(streams);
    await redis.quit();
    await h.dispose();
  });

  it('an entry becomes a CloudEvent; XACKed once the function succeeded', async () => {
    const stream = `nimbus-test-${RUN}-ok`;
    streams.push(stream);
    const t = await h.addTrigger({
      id: `redis-ok-${RUN}`,
      type: 'redis-streams',
      function: 'recorder',
      config: { stream },
    });
    await h.healthy(t.id);
    const id = await redis.xAdd(stream, '*', { data: '{"order":1}', 'content-type': 'application/json' });
    await redis.xAdd(stream, '*', { a: '1', b: 'two' });
    const events = await h.waitSeen(
      (e) => e.id?.startsWith(`${stream}:`),
      (all) => all.length === 2,
    );
    const first = events.find((e) => e.id === `${stream}:${id}`);
    assert.ok(first, JSON.stringify(events));
    assert.equal(first.specversion, '1.0');
    assert.equal(first.type, 'io.nimbus.redis.stream.entry');
    assert.equal(first.source, `redis://127.0.0.1:6379/${stream}`);
    assert.equal(first.subject, id);
    assert.equal(first.contentType, 'application/json');
    assert.equal(first.body, '{"order":1}');
    assert.equal(new Date(first.time).getTime(), Number(id.split('-')[0]));
    const fields = events.find((e) => e.id !== first.id);
    assert.deepEqual(JSON.parse(fields.body), { a: '1', b: 'two' });
    assert.equal(fields.contentType, 'application/json');
    await eventually(async () => (await redis.xPending(stream, `nimbus-${t.id}`)).pending === 0);
    assert.equal((await h.status(t.id)).delivered, 2);
  });

  it('a failing function: retries, then the DLQ, and only then the XACK', async (ctx) => {
    const stream = `nimbus-test-${RUN}-fail`;
    streams.push(stream);
    const t = await h.addTrigger({
      id: `redis-fail-${RUN}`,
      type: 'redis-streams',
      function: 'failer',
      config: { stream },
    });
    await h.healthy(t.id);
    const entry = await redis.xAdd(stream, '*', { data: 'doomed' });
    // Two attempts with a retry backoff between them: more than the default 10 s on a loaded machine.
    const dead = await eventually(
      async () => (await h.dlq('failer')).find((v: any) => v.request.headers['ce-id'] === `${stream}:${entry}`),
      30_000,
      'the entry in the DLQ',
    ).catch(async (err) => {
      // Where it stuck, for the run that fails: the function's invocations and the trigger's status.
      const invocations = await h.node.json('/api/v1/functions/failer/invocations?limit=100');
      ctx.diagnostic(
        `at ${Date.now()}: ${JSON.stringify(invocations)} trigger ${JSON.stringify(await h.status(t.id))}`,
      );
      throw err;
    });
    assert.equal(dead.attempts, 2, 'first attempt + maxRetries 1');
    assert.equal(dead.lastError, 'HTTP 500');
    await eventually(async () => (await redis.xPending(stream, `nimbus-${t.id}`)).pending === 0);
    assert.equal((await h.status(t.id)).failed, 1);
  });

  it('rejects bad config with the field named; an unreachable Redis shows unhealthy', async () => {
    assert.match(
      await h.rejected({ type: 'redis-streams', function: 'recorder', config: {} }),
      /config\.stream: required/,
    );
    assert.match(
      await h.rejected({ type: 'redis-streams', function: 'recorder', config: { stream: 's', url: 'http://x' } }),
      /config\.url: expected a redis:\/\//,
    );
    assert.match(
      await h.rejected({ type: 'redis-streams', function: 'recorder', config: { stream: 's', start: 'later' } }),
      /config\.start/,
    );
    await h.expectUnreachable('redis-streams', { stream: 's', url: 'redis://127.0.0.1:1' });
  });

  it('Redis killed (-9) mid-stream and restarted: every acknowledged entry is delivered', {
    timeout: 180_000,
  }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-redis-'));
    const port = await freePort();
    // appendfsync always: an XADD that was answered is on disk, so it survives kill -9.
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--dir',
      dir,
    ];
    let server: ChildProcess = await spawnBroker('redis-server', args, port);
    after(async () => {
      await stopProcess(server, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    const url = `redis://127.0.0.1:${port}`;
    const stream = `restart-${RUN}`;
    const trig = await h.addTrigger({
      id: `redis-restart-${RUN}`,
      type: 'redis-streams',
      function: 'recorder',
      config: { stream, url, start: '0', batch: 8 },
    });
    await h.healthy(trig.id);
    const published: string[] = [];
    const publish = async (from: number, to: number) => {
      const pub = createClient({ url, socket: { reconnectStrategy: false } });
      pub.on('error', () => {});
      await pub.connect();
      for (let i = from; i < to; i++) {
        await pub.xAdd(stream, '*', { data: `m-${i}` });
        published.push(`m-${i}`); // acknowledged by Redis
      }
      await pub.destroy();
    };
    await publish(0, 400);
    const atKill = (await h.seen((e) => e.id?.startsWith(`${stream}:`))).length;
    await stopProcess(server, 'SIGKILL');
    server = await spawnBroker('redis-server', args, port);
    await publish(400, 500);
    const seen = await h.waitSeen(
      (e) => e.id?.startsWith(`${stream}:`),
      (all) => deliveryReport(published, all).lost.length === 0,
      120_000,
    );
    const report = deliveryReport(published, seen);
    t.diagnostic(
      `redis restart: ${published.length} acknowledged, ${atKill} delivered at the kill, all delivered after; duplicates ${report.duplicates} (${report.redelivered} redelivered under a new id, ${report.reattempted} extra attempts)`,
    );
    assert.deepEqual(report.lost, []);
    const check = createClient({ url });
    await check.connect();
    await eventually(
      async () => (await check.xPending(stream, `nimbus-${trig.id}`)).pending === 0,
      30_000,
      'no pending entries',
    );
    await check.destroy();
    await h.node.call(`/api/v1/triggers/${trig.id}`, { method: 'DELETE' });
  });
});
