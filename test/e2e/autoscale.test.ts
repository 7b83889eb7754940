import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { APPS, eventually, startTestNode, type TestNode } from '../support/nimbus.js';

const scaleOf = async (node: TestNode, name: string) =>
  (await node.json(`/api/v1/functions/${name}/scale`)).revisions[0] as any;
const instances = async (node: TestNode, name: string) =>
  (await node.json(`/api/v1/functions/${name}/instances`)).instances as any[];

describe('autoscaler on one node (real instances)', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(() => node.dispose());

  it('a burst from zero to 200 concurrent requests completes with no errors', async () => {
    // concurrency 10 at 70%: 200 in flight want 29 instances; max 5 keeps the busy machine usable,
    // so 150 requests wait in the activator's queue and are served in order as slots free up.
    const { status } = await node.deploy(`${APPS}/echo`, {
      name: 'burst200',
      concurrency: 10,
      timeout: 60,
      scale: { max: 5 },
    });
    assert.equal(status, 201);
    const responses = await Promise.all(
      Array.from({ length: 200 }, () =>
        node.call('/fn/burst200/sleep?ms=200').then(async (r) => [r.status, await r.text()] as const),
      ),
    );
    const failed = responses.filter(([s]) => s !== 200);
    assert.deepEqual(failed, [], 'every request of the burst answered 200');
    assert.ok(responses.every(([, text]) => text.startsWith('slept ')));
    const view = await scaleOf(node, 'burst200');
    assert.equal(view.desired, 5, 'the panic window wanted more than max: capped at 5');
    assert.equal(view.panic, true);
    assert.ok(view.ready + view.starting <= 5);
    assert.equal(view.queue.length, 0);
    const metrics = await (await node.call('/metrics')).text();
    assert.match(metrics, /nimbus_autoscaler_desired_instances\{function="burst200",revision="r1"\} 5/);
    assert.match(metrics, /nimbus_autoscaler_panic\{function="burst200",revision="r1"\} 1/);
  });

  it('scale-down drains: an instance picked for removal finishes its long request first', async () => {
    // A 6 s stable window (0.6 s panic window) so the test sees the scale-down within seconds.
    await node.deploy(`${APPS}/echo`, {
      name: 'drain',
      concurrency: 4,
      timeout: 60,
      scale: { max: 4, window: 6, idleTimeout: 300 },
    });
    // 16 at once: 16 / (4 x 70%) = 6 wanted, 4 (max) started.
    await Promise.all(Array.from({ length: 16 }, () => node.call('/fn/drain/sleep?ms=1500').then((r) => r.text())));
    await eventually(async () => (await scaleOf(node, 'drain')).ready >= 2, 30_000, 'two ready instances');
    // Two long requests: least-loaded routing puts them on two different instances.
    const first = node.call('/fn/drain/sleep?ms=12000');
    await eventually(
      async () => (await instances(node, 'drain')).some((i) => i.inFlight === 1),
      10_000,
      'first in flight',
    );
    const second = node.call('/fn/drain/sleep?ms=12000');
    const busy = await eventually(
      async () => {
        const list = (await instances(node, 'drain')).filter((i) => i.inFlight === 1);
        return list.length === 2 ? list : undefined;
      },
      10_000,
      'both in flight',
    );
    // 2 in flight want 1 instance: once panic is over, one of the two busy ones is drained.
    const drained = await eventually(
      async () => (await instances(node, 'drain')).find((i) => i.state === 'draining' && i.inFlight === 1),
      30_000,
      'a busy instance drained',
    );
    assert.ok(busy!.some((b: any) => b.id === drained.id));
    assert.equal((await scaleOf(node, 'drain')).desired, 1);
    const answers = await Promise.all([first, second].map(async (r) => [(await r).status, await (await r).text()]));
    assert.deepEqual(
      answers.map(([s]) => s),
      [200, 200],
      'neither long request was cut',
    );
    assert.ok(
      answers.some(([, text]) => text === `slept ${drained.id}`),
      'the drained instance answered its request',
    );
    const recent = await eventually(
      async () => {
        const window = await node.json('/api/v1/functions/drain/instances');
        return window.recent.find((e: any) => e.id === drained.id);
      },
      10_000,
      'the drained instance stopped',
    );
    assert.equal(recent.state, 'stopped');
    assert.match(recent.reason, /scaled down/);
  });

  it('past the activator bound: 503 with Retry-After and NIMBUS_ERR_OVERLOADED; held requests still served', async () => {
    await node.deploy(`${APPS}/echo`, {
      name: 'bounded',
      concurrency: 1,
      timeout: 60,
      scale: { max: 1, maxQueue: 2 },
    });
    const busy = node.call('/fn/bounded/sleep?ms=3000');
    await eventually(async () => (await instances(node, 'bounded')).some((i) => i.inFlight === 1), 20_000, 'busy');
    const held = [node.call('/fn/bounded/sleep?ms=10'), node.call('/fn/bounded/sleep?ms=10')];
    await eventually(async () => (await scaleOf(node, 'bounded')).queue.length === 2, 10_000, 'two held');
    const view = await scaleOf(node, 'bounded');
    assert.deepEqual(view.queue, { length: 2, limit: 2 });
    const over = await node.call('/fn/bounded/sleep?ms=10');
    assert.equal(over.status, 503);
    assert.equal(over.headers.get('retry-after'), '1');
    assert.equal(over.headers.get('x-nimbus-error'), 'NIMBUS_ERR_OVERLOADED');
    assert.equal(((await over.json()) as any).error.code, 'NIMBUS_ERR_OVERLOADED');
    assert.equal((await busy).status, 200);
    for (const r of await Promise.all(held)) assert.equal(r.status, 200, 'held requests are served in turn');
  });

  it('the scale view answers 404 for an unknown function', async () => {
    const res = await node.call('/api/v1/functions/nope/scale');
    assert.equal(res.status, 404);
  });
});
