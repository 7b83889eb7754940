import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';

const json = { 'content-type': 'application/json' };
// r1 fails its first call (per instance) and then answers `one:N`; r2 always answers `two`.
const flakyOne = `let calls = 0;
export default { fetch: () => (++calls === 1 ? new Response('not yet', { status: 500 }) : new Response('one:' + calls)) };
`;
const two = `export default { fetch: () => new Response('two') };\n`;

describe('async invocation of a tag: /async/fn/NAME@TAG/', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode({ async: { retryBaseDelayMs: 50, retryJitter: 0 } });
    for (const source of [flakyOne, two]) {
      const { status } = await node.deploy(writeSource({ 'index.js': source }), { name: 'tagged' });
      assert.equal(status, 201);
    }
    const res = await node.call('/api/v1/functions/tagged/traffic', {
      method: 'PUT',
      headers: json,
      body: JSON.stringify({
        traffic: [
          { latest: true, percent: 100 },
          { revision: 'r1', tag: 'blue' },
        ],
      }),
    });
    assert.equal(res.status, 200);
  });
  after(() => node.dispose());

  const waitDone = (id: string) =>
    eventually(
      async () => {
        const view = await node.json(`/api/v1/invocations/${id}`);
        return ['succeeded', 'failed', 'dead'].includes(view.status) && view;
      },
      60_000,
      `invocation ${id} to end`,
    );

  it('runs the tagged revision, and its retry runs the same tag, not the current one', async () => {
    const res = await node.call('/async/fn/tagged@blue/x', { method: 'POST', body: 'hi' });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const done = await waitDone(id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.tag, 'blue');
    assert.equal(done.attempts, 2, 'the first attempt failed with a 500 and was retried');
    assert.match(done.result.body, /^one:/, `the retry ran r1 (blue), not r2: ${done.result.body}`);
  });

  it('takes a revision id as the tag, and the untagged URL still follows the traffic split', async () => {
    const byId = (await (await node.call('/async/fn/tagged@r2/', { method: 'POST' })).json()) as { id: string };
    const plain = (await (await node.call('/async/fn/tagged/', { method: 'POST' })).json()) as { id: string };
    const [a, b] = await Promise.all([waitDone(byId.id), waitDone(plain.id)]);
    assert.deepEqual([a.status, a.result.body, a.tag], ['succeeded', 'two', 'r2']);
    assert.deepEqual([b.status, b.result.body, b.tag], ['succeeded', 'two', undefined]);
  });

  it('answers 404 at enqueue for an unknown tag or function, storing nothing', async () => {
    const before = (await node.json('/api/v1/functions/tagged/invocations')).invocations.length;
    const noTag = await node.call('/async/fn/tagged@green/', { method: 'POST' });
    assert.equal(noTag.status, 404);
    assert.equal(((await noTag.json()) as any).error.code, 'NIMBUS_ERR_REVISION_NOT_FOUND');
    const noFn = await node.call('/async/fn/nosuch@blue/', { method: 'POST' });
    assert.equal(noFn.status, 404);
    assert.equal(((await noFn.json()) as any).error.code, 'NIMBUS_ERR_FUNCTION_NOT_FOUND');
    const afterwards = (await node.json('/api/v1/functions/tagged/invocations')).invocations.length;
    assert.equal(afterwards, before);
  });
});
