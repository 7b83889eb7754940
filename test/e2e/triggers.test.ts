import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection, headers as natsHeaders } from 'nats';
import { runCli } from '../../src/cli/index.js';
import { eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';

// A function that answers with the CloudEvents headers and the body it received.
const recorder = writeSource({
  'index.js': `export default { fetch: async (r) => Response.json({
    id: r.headers.get('ce-id'), type: r.headers.get('ce-type'), source: r.headers.get('ce-source'),
    specversion: r.headers.get('ce-specversion'), time: r.headers.get('ce-time'), subject: r.headers.get('ce-subject'),
    body: await r.text() }) };`,
  'nimbus.yaml': 'name: recorder\n',
});

const run = `${process.pid}-${Date.now().toString(36)}`;

describe('triggers', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-triggers-'));
  let node: TestNode;
  let nc: NatsConnection;
  before(async () => {
    node = await startTestNode({ dataDir });
    assert.equal((await node.deploy(recorder)).status, 201);
    nc = await connect({ servers: 'nats://127.0.0.1:4222' });
  });
  after(async () => {
    await nc.close();
    await node.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const addTrigger = async (body: Record<string, unknown>): Promise<any> => {
    const res = await node.call('/api/v1/triggers', { method: 'POST', body: JSON.stringify(body) });
    const json = await res.json();
    assert.equal(res.status, 201, JSON.stringify(json));
    return json;
  };
  /** The recorder's succeeded invocations, as what the function saw. */
  const seen = async () => {
    const { invocations } = await node.json('/api/v1/functions/recorder/invocations?state=succeeded&limit=1000');
    return invocations.map((v: any) => JSON.parse(v.result.body));
  };
  const healthy = (id: string) =>
    eventually(async () => (await node.json(`/api/v1/triggers/${id}`)).status.healthy, 10_000, `${id} healthy`);

  it('NATS core: each message becomes a CloudEvent invocation; a request gets the outcome as its reply', async () => {
    const subject = `nimbus.test.${run}.core`;
    const trigger = await addTrigger({ id: `core-${run}`, type: 'nats', function: 'recorder', config: { subject } });
    assert.equal(trigger.type, 'nats');
    await healthy(trigger.id);
    const h = natsHeaders();
    h.set('Nats-Msg-Id', `msg-1-${run}`);
    nc.publish(subject, 'first', { headers: h });
    nc.publish(subject, 'second');
    const reply = await nc.request(subject, 'third', { timeout: 10_000 });
    assert.deepEqual(JSON.parse(reply.string()), { result: 'succeeded' });
    const events = await eventually(async () => {
      const all = (await seen()).filter((e: any) => e.source === `nats://127.0.0.1:4222/${subject}`);
      return all.length === 3 && all;
    });
    assert.deepEqual(events.map((e: any) => e.body).sort(), ['first', 'second', 'third']);
    const first = events.find((e: any) => e.body === 'first');
    assert.equal(first.id, `msg-1-${run}`);
    assert.equal(first.type, 'io.nimbus.nats.message');
    assert.equal(first.specversion, '1.0');
    assert.equal(first.subject, subject);
    assert.ok(!Number.isNaN(Date.parse(first.time)));
    const status = (await node.json(`/api/v1/triggers/${trigger.id}`)).status;
    assert.equal(status.delivered, 3);
    assert.equal(status.failed, 0);
  });

  it('NATS JetStream: messages are acknowledged once their invocation ended, none left pending', async () => {
    const stream = `NIMBUS_${run.replace(/-/g, '_')}`;
    const subject = `nimbus.test.${run}.js`;
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [subject] });
    after(() => jsm.streams.delete(stream).catch(() => {}));
    const js = nc.jetstream();
    for (let i = 0; i < 5; i++) await js.publish(subject, `js ${i}`);
    const trigger = await addTrigger({
      id: `js-${run}`,
      type: 'nats',
      function: 'recorder',
      config: { subject, stream },
    });
    await eventually(async () => (await seen()).filter((e: any) => e.id?.startsWith(`${stream}:`)).length === 5);
    const info = await eventually(async () => {
      const i = await jsm.consumers.info(stream, `nimbus-${trigger.id}`);
      return i.num_ack_pending === 0 && i.num_pending === 0 && i;
    });
    assert.ok(info);
    assert.equal(info.delivered.stream_seq, 5);
  });

  it('cron: fires on its schedule with a CloudEvent of type io.nimbus.cron.tick', async () => {
    const trigger = await addTrigger({
      id: `cron-${run}`,
      type: 'cron',
      function: 'recorder',
      config: { schedule: '* * * * * *', timezone: 'Europe/Paris' },
    });
    const tick = await eventually(async () => (await seen()).find((e: any) => e.id?.startsWith(`${trigger.id}@`)));
    assert.equal(tick.type, 'io.nimbus.cron.tick');
    assert.equal(JSON.parse(tick.body).timezone, 'Europe/Paris');
    assert.equal((await node.call(`/api/v1/triggers/${trigger.id}`, { method: 'DELETE' })).status, 200);
    assert.equal((await node.call(`/api/v1/triggers/${trigger.id}`)).status, 404);
  });

  it('a broker that is down shows the trigger unhealthy with the error, and the node keeps serving', async () => {
    const trigger = await addTrigger({
      id: `down-${run}`,
      type: 'nats',
      function: 'recorder',
      config: { subject: 'x', url: 'nats://127.0.0.1:1' },
    });
    const status = await eventually(async () => {
      const s = (await node.json(`/api/v1/triggers/${trigger.id}`)).status;
      return s.lastError && !/connecting/.test(s.lastError) && s;
    });
    assert.equal(status.healthy, false);
    assert.match(status.lastError, /ECONNREFUSED|CONNECTION_REFUSED/);
    assert.equal((await node.call('/healthz')).status, 200);
    await node.call(`/api/v1/triggers/${trigger.id}`, { method: 'DELETE' });
  });

  it('rejects an unknown type or a bad config with the field named', async () => {
    const bad = async (body: unknown) => {
      const res = await node.call('/api/v1/triggers', { method: 'POST', body: JSON.stringify(body) });
      assert.equal(res.status, 400);
      return ((await res.json()) as any).error.message;
    };
    assert.match(await bad({ type: 'smoke-signals', function: 'recorder' }), /type: expected one of/);
    assert.match(await bad({ type: 'nats', function: 'recorder', config: {} }), /config.subject/);
    assert.match(await bad({ type: 'cron', function: 'recorder', config: { schedule: 'often' } }), /schedule/);
  });

  it('nimbus triggers add / ls / rm', async () => {
    let out = '';
    const stdout = new Writable({
      write(chunk, _e, cb) {
        out += chunk;
        cb();
      },
    });
    const cli = (...args: string[]) =>
      runCli(args, { context: { stdout, stderr: stdout, env: { NIMBUS_URL: node.url } } });
    assert.equal(await cli('triggers', 'add', 'interval', 'recorder', 'seconds=3600', '--id', `cli-${run}`), 0, out);
    assert.match(out, new RegExp(`added: cli-${run} \\(interval → recorder\\)`));
    out = '';
    assert.equal(await cli('triggers', 'ls'), 0);
    assert.match(
      out,
      new RegExp(`cli-${run}\\s+interval\\s+recorder\\s+api\\s+yes\\s+0\\s+0\\s+-\\s+\\{"seconds":3600\\}`),
    );
    assert.equal(await cli('triggers', 'rm', `cli-${run}`), 0);
    out = '';
    assert.equal(await cli('triggers', 'rm', `cli-${run}`), 1);
    assert.match(out, /NIMBUS_ERR_TRIGGER_NOT_FOUND/);
    assert.equal(await cli('triggers', 'add', 'cron', 'recorder', 'oops'), 2);
  });

  it('keeps triggers across a restart of the node', { timeout: 30_000 }, async () => {
    const subject = `nimbus.test.${run}.restart`;
    const trigger = await addTrigger({ id: `restart-${run}`, type: 'nats', function: 'recorder', config: { subject } });
    await node.close();
    node = await startTestNode({ dataDir });
    const { triggers } = await node.json('/api/v1/triggers');
    assert.ok(triggers.some((t: any) => t.id === trigger.id));
    await healthy(trigger.id);
    nc.publish(subject, 'after restart');
    await eventually(async () => (await seen()).some((e: any) => e.body === 'after restart'));
  });
});
