import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from 'nats';
import { APPS, startTestNode, type TestNode } from '../support/nimbus.js';

// The NATS server this machine kind runs on loopback (JetStream on); see the env notes.
const NATS_URL = 'nats://127.0.0.1:4222';

describe('async destinations on NATS', () => {
  let node: TestNode;
  let nc: NatsConnection;
  before(async () => {
    node = await startTestNode({ natsUrl: NATS_URL });
    nc = await connect({ servers: NATS_URL });
    assert.equal((await node.deploy(`${APPS}/echo`)).status, 201);
  });
  after(async () => {
    await nc.drain();
    await node.dispose();
  });

  it('publishes the result record of a successful invocation on the on-success subject', async () => {
    const subject = `nimbus.test.${randomUUID().slice(0, 8)}.ok`;
    const sub = nc.subscribe(subject, { max: 1, timeout: 15_000 });
    const put = await node.call('/api/v1/functions/echo/async-config', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ destinations: { onSuccess: `nats:${subject}` } }),
    });
    assert.equal(put.status, 200, await put.text());
    const accepted = await node.json('/async/fn/echo/hello', { method: 'POST', body: 'payload' });
    for await (const msg of sub) {
      const record = msg.json<{ id: string; condition: string; function: string; response: { status: number } }>();
      assert.equal(record.id, accepted.id);
      assert.equal(record.condition, 'Success');
      assert.equal(record.function, 'echo');
      assert.equal(record.response.status, 200);
      assert.equal(msg.headers?.get('x-nimbus-invocation-id'), accepted.id);
    }
  });
});
