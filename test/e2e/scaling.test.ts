import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { APPS, eventually, startTestNode, type TestNode } from '../support/nimbus.js';

const instances = async (node: TestNode, name: string) =>
  (await node.json(`/api/v1/functions/${name}`)).instances as any[];

describe('scaling on one node', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(() => node.dispose());

  it('scales to zero after idleTimeout, and holds the next request until a new instance is ready', async () => {
    const { status } = await node.deploy(`${APPS}/echo`, { name: 'idle', scale: { idleTimeout: 1 } });
    assert.equal(status, 201);
    const first = await (await node.call('/fn/idle/id')).text();
    assert.equal((await instances(node, 'idle')).length, 1);
    await eventually(async () => (await instances(node, 'idle')).length === 0, 10_000, 'scale to zero');
    const res = await node.call('/fn/idle/id');
    assert.equal(res.status, 200, 'the request at zero was held, not dropped');
    assert.notEqual(await res.text(), first, 'served by a new instance');
  });

  it('starts more instances when every slot is busy, up to scale.max, and queues the rest', async () => {
    // A timeout well past the burst's 6 × 300 ms: on a loaded machine the first instance may serve
    // them all in turn before the others are ready (echo's own 2 s made that a 504, CI16).
    await node.deploy(`${APPS}/echo`, { name: 'burst', concurrency: 1, timeout: 15, scale: { max: 3 } });
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => node.call('/fn/burst/sleep?ms=300').then((r) => r.text())),
    );
    assert.ok(
      answers.every((a) => a.startsWith('slept ')),
      answers.join(),
    );
    // 6 in flight or held want 9 instances (concurrency 1 at 70%): the autoscaler asks for max.
    // Which of them served is up to timing (held requests go to whichever is ready first).
    const ids = new Set(answers.map((a) => a.split(' ')[1]));
    assert.ok(ids.size >= 1 && ids.size <= 3, `at most max instances served: ${[...ids]}`);
    const list = await eventually(
      async () => {
        const l = await instances(node, 'burst');
        return l.length === 3 ? l : undefined;
      },
      10_000,
      'scaled to max',
    );
    assert.equal(
      list!.reduce((n, i) => n + i.requests, 0),
      6,
    );
  });

  it('keeps scale.min instances warm from deploy on', async () => {
    await node.deploy(`${APPS}/echo`, { name: 'warm', scale: { min: 2, idleTimeout: 1 } });
    await eventually(
      async () => (await instances(node, 'warm')).filter((i) => i.state === 'ready').length === 2,
      10_000,
      'two warm instances',
    );
    const res = await node.call('/fn/warm/pid');
    assert.equal(res.status, 200);
  });

  it('drains the old revision after a deploy: its in-flight request completes', async () => {
    await node.deploy(`${APPS}/echo`, { name: 'roll' });
    const slow = node.call('/fn/roll/sleep?ms=800');
    await eventually(
      async () => (await instances(node, 'roll')).some((i) => i.inFlight === 1),
      5000,
      'request in flight',
    );
    const { body } = await node.deploy(`${APPS}/echo`, { name: 'roll', env: { GREETING: 'hi' } });
    assert.equal(body.revision, 'r2');
    assert.equal((await node.call('/fn/roll/')).status, 200);
    assert.equal((await node.json('/fn/roll/')).greeting, 'hi, world');
    const done = await slow;
    assert.equal(done.status, 200);
    assert.match(await done.text(), /^slept /);
    await eventually(async () => (await instances(node, 'roll')).every((i) => i.revision === 'r2'), 5000, 'r1 stopped');
  });
});
