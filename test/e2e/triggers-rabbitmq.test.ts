import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ChannelModel, type ConfirmChannel, connect } from 'amqplib';
import { type BrokerHarness, brokerTestNode, deliveryReport, RUN, tcpProxy } from '../support/brokers.js';
import { eventually } from '../support/nimbus.js';

const SHARED = 'amqp://guest:guest@127.0.0.1:5672';

describe('rabbitmq trigger (real RabbitMQ)', () => {
  let h: BrokerHarness;
  let conn: ChannelModel;
  let ch: ConfirmChannel;
  const queues: string[] = [];
  /** Publishes with publisher confirms: resolves once RabbitMQ took responsibility for it. */
  const publish = async (queue: string, body: string, options: Record<string, unknown> = {}) => {
    ch.sendToQueue(queue, Buffer.from(body), { persistent: true, ...options });
    await ch.waitForConfirms();
  };
  const declare = async (queue: string) => {
    queues.push(queue);
    await ch.assertQueue(queue, { durable: true });
  };
  before(async () => {
    h = await brokerTestNode(20);
    conn = await connect(SHARED);
    ch = await conn.createConfirmChannel();
  });
  after(async () => {
    for (const q of queues) await ch.deleteQueue(q).catch(() => {});
    await conn.close();
    await h.dispose();
  });

  it('a message becomes a CloudEvent; acked once the function succeeded', async () => {
    const queue = `nimbus-test-${RUN}-ok`;
    await declare(queue);
    const t = await h.addTrigger({ id: `amqp-ok-${RUN}`, type: 'rabbitmq', function: 'recorder', config: { queue } });
    await h.healthy(t.id);
    await publish(queue, '{"n":1}', {
      messageId: `m1-${RUN}`,
      contentType: 'application/json',
      timestamp: 1_700_000_000,
    });
    await publish(queue, 'plain');
    const events = await h.waitSeen(
      (e) => e.source === `amqp://127.0.0.1:5672/${queue}`,
      (all) => all.length === 2,
    );
    const first = events.find((e) => e.body === '{"n":1}');
    assert.equal(first.id, `${queue}:m1-${RUN}`);
    assert.equal(first.specversion, '1.0');
    assert.equal(first.type, 'io.nimbus.rabbitmq.message');
    assert.equal(first.subject, queue, 'the routing key (default exchange: the queue name)');
    assert.equal(first.contentType, 'application/json');
    assert.equal(first.time, new Date(1_700_000_000_000).toISOString());
    assert.ok(events.find((e) => e.body === 'plain'));
    // Nothing left unacked: with the trigger gone nothing comes back to the queue.
    assert.equal((await h.node.call(`/api/v1/triggers/${t.id}`, { method: 'DELETE' })).status, 200);
    assert.equal((await ch.checkQueue(queue)).messageCount, 0);
  });

  it('a failing function: retries, then the DLQ, and only then the ack', async () => {
    const queue = `nimbus-test-${RUN}-fail`;
    await declare(queue);
    const t = await h.addTrigger({ id: `amqp-fail-${RUN}`, type: 'rabbitmq', function: 'failer', config: { queue } });
    await h.healthy(t.id);
    await publish(queue, 'doomed', { messageId: `doomed-${RUN}` });
    const dead = await eventually(async () =>
      (await h.dlq('failer')).find((v: any) => v.request.headers['ce-id'] === `${queue}:doomed-${RUN}`),
    );
    assert.equal(dead.attempts, 2, 'first attempt + maxRetries 1');
    await eventually(async () => (await h.status(t.id)).failed === 1);
    assert.equal((await h.node.call(`/api/v1/triggers/${t.id}`, { method: 'DELETE' })).status, 200);
    assert.equal((await ch.checkQueue(queue)).messageCount, 0, 'acked once dead-lettered');
  });

  it('a queue deleted under the trigger: it reconnects and consumes the queue again', async () => {
    const queue = `nimbus-test-${RUN}-deleted`;
    await declare(queue);
    const t = await h.addTrigger({ id: `amqp-del-${RUN}`, type: 'rabbitmq', function: 'recorder', config: { queue } });
    await h.healthy(t.id);
    await ch.deleteQueue(queue); // RabbitMQ cancels the consumer
    await ch.assertQueue(queue, { durable: true });
    await publish(queue, 'after the delete');
    await h.waitSeen(
      (e) => e.body === 'after the delete',
      (all) => all.length === 1,
      30_000,
    );
    assert.equal((await h.node.call(`/api/v1/triggers/${t.id}`, { method: 'DELETE' })).status, 200);
  });

  it('rejects bad config with the field named; an unreachable broker shows unhealthy', async () => {
    assert.match(await h.rejected({ type: 'rabbitmq', function: 'recorder', config: {} }), /config\.queue: required/);
    assert.match(
      await h.rejected({ type: 'rabbitmq', function: 'recorder', config: { queue: 'q', prefetch: 0 } }),
      /config\.prefetch: expected a whole number from 1/,
    );
    assert.match(
      await h.rejected({ type: 'rabbitmq', function: 'recorder', config: { queue: 'q', url: 'nats://x' } }),
      /config\.url: expected a amqp:\/\/ or amqps:\/\/ URL/,
    );
    const view = await h.expectUnreachable('rabbitmq', { queue: 'q', url: 'amqp://guest:guest@127.0.0.1:1' });
    assert.doesNotMatch(JSON.stringify(view.status), /guest:guest/);
  });

  it('the broker connection dropped mid-stream: every confirmed message is delivered, redeliveries run once', {
    timeout: 180_000,
  }, async (t) => {
    // RabbitMQ is shared with other tests and too heavy to start per test: a proxy in front of it
    // cuts every connection at once, which is what a broker restart looks like to its clients
    // (RabbitMQ requeues the unacked messages; durable queue, persistent messages).
    const proxy = await tcpProxy(5672);
    after(() => proxy.close());
    const queue = `nimbus-test-${RUN}-cut`;
    await declare(queue);
    const trig = await h.addTrigger({
      id: `amqp-cut-${RUN}`,
      type: 'rabbitmq',
      function: 'recorder',
      config: { queue, url: `amqp://guest:guest@127.0.0.1:${proxy.port}`, prefetch: 8 },
    });
    await h.healthy(trig.id);
    const published: string[] = [];
    // Even messages carry a messageId (a redelivery has the same ce-id: it cannot run twice); odd
    // ones none (a redelivery is matched to its first id by content, as far as Nimbus saw it).
    const send = async (i: number) => {
      await publish(queue, `m-${i}`, i % 2 === 0 ? { messageId: `m-${i}-${RUN}` } : {});
      published.push(`m-${i}`);
    };
    for (let i = 0; i < 300; i++) await send(i);
    const atCut = (await h.seen((e) => e.subject === queue)).length;
    proxy.cut();
    for (let i = 300; i < 400; i++) await send(i);
    const seen = await h.waitSeen(
      (e) => e.subject === queue,
      (all) => deliveryReport(published, all).lost.length === 0,
      120_000,
    );
    const report = deliveryReport(published, seen);
    t.diagnostic(
      `rabbitmq connection cut: ${published.length} confirmed, ${atCut} delivered at the cut, all delivered after; duplicates ${report.duplicates} (${report.redelivered} redelivered under a new id, ${report.reattempted} extra attempts)`,
    );
    assert.deepEqual(report.lost, []);
    const withId = deliveryReport(
      published.filter((_, i) => i % 2 === 0),
      seen.filter((e) => e.id.startsWith(`${queue}:`)),
    );
    t.diagnostic(`of which with a messageId: ${withId.redelivered} redelivered under a new id`);
    assert.equal(withId.redelivered, 0, 'a message with a messageId never runs under two ids');
    await h.node.call(`/api/v1/triggers/${trig.id}`, { method: 'DELETE' });
    assert.equal((await ch.checkQueue(queue)).messageCount, 0);
  });
});
