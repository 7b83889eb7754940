import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
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

const SHARED = 'mqtt://127.0.0.1:1883';

/** Publishes at QoS 1 (or 0); resolves with the bodies the broker acknowledged (PUBACK). */
async function publishAll(
  url: string,
  topic: string,
  bodies: string[],
  props?: (i: number) => object,
  qos: 0 | 1 = 1,
): Promise<string[]> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  const acked: string[] = [];
  for (const [i, body] of bodies.entries()) {
    await client.publishAsync(topic, body, { qos, properties: props?.(i) });
    acked.push(body);
  }
  await client.endAsync();
  return acked;
}

describe('mqtt trigger (real Mosquitto)', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await brokerTestNode(20);
  });
  after(async () => {
    await h.dispose();
    // The triggers' persistent sessions would outlive the test on the shared broker: end them.
    for (const name of ['ok', 'away', 'fail']) {
      const c = await mqtt.connectAsync(SHARED, {
        clientId: `nimbus-mqtt-${name}-${RUN}`,
        protocolVersion: 5,
        clean: true,
        properties: { sessionExpiryInterval: 0 },
        reconnectPeriod: 0,
      });
      await c.endAsync();
    }
  });

  it('a QoS 1 message becomes a CloudEvent; ce-id from the MQTT 5 user property when set', async () => {
    const topic = `nimbus/test/${RUN}/ok`;
    const t = await h.addTrigger({
      id: `mqtt-ok-${RUN}`,
      type: 'mqtt',
      function: 'recorder',
      config: { topic: `${topic}/+` },
    });
    await h.healthy(t.id);
    await publishAll(SHARED, `${topic}/a`, ['with id'], () => ({
      userProperties: { 'ce-id': `evt-${RUN}` },
      contentType: 'text/plain',
    }));
    await publishAll(SHARED, `${topic}/b`, ['plain']);
    await publishAll(SHARED, `${topic}/c`, ['at most once'], () => ({}), 0);
    const events = await h.waitSeen(
      (e) => e.source === `mqtt://127.0.0.1:1883/${topic}/+`,
      (all) => all.length === 3,
    );
    const first = events.find((e) => e.body === 'with id');
    assert.equal(first.id, `${topic}/a:evt-${RUN}`);
    assert.equal(first.specversion, '1.0');
    assert.equal(first.type, 'io.nimbus.mqtt.message');
    assert.equal(first.subject, `${topic}/a`);
    assert.equal(first.contentType, 'text/plain');
    assert.ok(!Number.isNaN(Date.parse(first.time)));
    const second = events.find((e) => e.body === 'plain');
    assert.equal(second.subject, `${topic}/b`);
    assert.equal(second.contentType, 'application/octet-stream');
    assert.ok(
      events.find((e) => e.body === 'at most once' && e.subject === `${topic}/c`),
      'a QoS 0 message is delivered too',
    );
    assert.equal((await h.status(t.id)).delivered, 3);
  });

  it('messages published while Nimbus is down wait in the persistent session; deleting the trigger ends it', async () => {
    const topic = `nimbus/test/${RUN}/away`;
    const id = `mqtt-away-${RUN}`;
    await h.addTrigger({ id, type: 'mqtt', function: 'recorder', config: { topic } });
    await h.healthy(id);
    let acked: string[] = [];
    await h.restart(async () => {
      acked = await publishAll(SHARED, topic, ['while away 1', 'while away 2']);
    });
    const seen = await h.waitSeen(
      (e) => e.subject === topic,
      (all) => all.length === 2,
      30_000,
    );
    assert.deepEqual(deliveryReport(acked, seen).lost, []);
    assert.equal(deliveryReport(acked, seen).duplicates, 0);
    assert.equal((await h.node.call(`/api/v1/triggers/${id}`, { method: 'DELETE' })).status, 200);
    // The session is gone from the broker: a client with its id finds none.
    const probe = mqtt.connect(SHARED, {
      clientId: `nimbus-${id}`,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 0 },
      reconnectPeriod: 0,
    });
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      probe.once('connect', resolve);
      probe.once('error', reject);
    });
    await probe.endAsync();
    assert.equal(connack.sessionPresent, false);
  });

  it('a failing function: retries, then the DLQ, and only then the PUBACK', async () => {
    const topic = `nimbus/test/${RUN}/fail`;
    const t = await h.addTrigger({ id: `mqtt-fail-${RUN}`, type: 'mqtt', function: 'failer', config: { topic } });
    await h.healthy(t.id);
    await publishAll(SHARED, topic, ['doomed']);
    const dead = await eventually(async () =>
      (await h.dlq('failer')).find((v: any) => v.request.headers['ce-subject'] === topic),
    );
    assert.equal(dead.attempts, 2, 'first attempt + maxRetries 1');
    await eventually(async () => (await h.status(t.id)).failed === 1);
  });

  it('rejects bad config with the field named; an unreachable broker shows unhealthy', async () => {
    assert.match(await h.rejected({ type: 'mqtt', function: 'recorder', config: {} }), /config\.topic: required/);
    assert.match(
      await h.rejected({ type: 'mqtt', function: 'recorder', config: { topic: 't', keepalive: 1 } }),
      /config\.keepalive: expected a whole number/,
    );
    assert.match(
      await h.rejected({ type: 'mqtt', function: 'recorder', config: { topic: 't', qos: 2 } }),
      /config: unknown field qos/,
    );
    assert.match(
      await h.rejected({ type: 'mqtt', function: 'recorder', config: { topic: 'a/#/b' } }),
      /config\.topic: "\+" must be a whole level and "#" the whole last level/,
    );
    assert.match(await h.rejected({ type: 'mqtt', function: 'recorder', config: { topic: 'a/b+' } }), /config\.topic/);
    await h.expectUnreachable('mqtt', { topic: 't', url: 'mqtt://127.0.0.1:1' });
  });

  it('Mosquitto restarted mid-stream: every acknowledged message is delivered', { timeout: 180_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-mosquitto-'));
    // Mosquitto started as root drops to its own user: it must be able to write its store here.
    chmodSync(dir, 0o777);
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location ${dir}/\n` +
        'max_queued_messages 0\nautosave_interval 1\n',
    );
    let server: ChildProcess = await spawnBroker('mosquitto', ['-c', conf], port);
    after(async () => {
      await stopProcess(server, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    const url = `mqtt://127.0.0.1:${port}`;
    const topic = `restart/${RUN}`;
    const trig = await h.addTrigger({
      id: `mqtt-restart-${RUN}`,
      type: 'mqtt',
      function: 'recorder',
      config: { topic, url },
    });
    await h.healthy(trig.id);
    const bodies = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m-${from + i}`);
    const published = await publishAll(url, topic, bodies(0, 200));
    // Mid-stream: some delivered, most still queued in the session or in flight.
    const atStop = (
      await h.waitSeen(
        (e) => e.subject === topic,
        (all) => all.length >= 20,
        60_000,
      )
    ).length;
    // Mosquitto writes its store on a clean shutdown (and every second); it does not fsync each
    // message, so a kill -9 could lose the last second — a restart is what is tested here.
    await stopProcess(server, 'SIGTERM');
    server = await spawnBroker('mosquitto', ['-c', conf], port);
    published.push(...(await publishAll(url, topic, bodies(200, 300))));
    const seen = await h.waitSeen(
      (e) => e.subject === topic,
      (all) => deliveryReport(published, all).lost.length === 0,
      120_000,
    );
    const report = deliveryReport(published, seen);
    t.diagnostic(
      `mosquitto restart: ${published.length} acknowledged, ${atStop} delivered at the stop, all delivered after; duplicates ${report.duplicates} (${report.redelivered} redelivered under a new id, ${report.reattempted} extra attempts)`,
    );
    assert.deepEqual(report.lost, []);
    await h.node.call(`/api/v1/triggers/${trig.id}`, { method: 'DELETE' });
  });
});
