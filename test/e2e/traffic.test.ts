import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestNode, type TestNode, writeSource } from '../support/nimbus.js';
import { cli, tally } from '../support/traffic.js';

const hello = (word: string) => `export default { fetch: () => new Response('${word}') };\n`;
const json = { 'content-type': 'application/json' };

describe('revisions and traffic', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
    for (const word of ['one', 'two']) {
      const { status } = await node.deploy(writeSource({ 'index.js': hello(word) }), { name: 'split' });
      assert.equal(status, 201);
    }
  });
  after(() => node.dispose());

  const put = (name: string, traffic: unknown) =>
    node.call(`/api/v1/functions/${name}/traffic`, { method: 'PUT', headers: json, body: JSON.stringify({ traffic }) });

  it('lists and describes revisions with their share and tags', async () => {
    const list = await node.json('/api/v1/functions/split/revisions');
    assert.deepEqual(
      list.revisions.map((r: any) => [r.id, r.percent, r.latest, r.latestReady]),
      [
        ['r2', 100, true, true],
        ['r1', 0, false, false],
      ],
    );
    const r1 = await node.json('/api/v1/functions/split/revisions/r1');
    assert.equal(r1.id, 'r1');
    assert.equal(r1.config.name, 'split');
    const missing = await node.call('/api/v1/functions/split/revisions/r9');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).error.code, 'NIMBUS_ERR_REVISION_NOT_FOUND');
  });

  it('splits 90/10 within binomial bounds over 1,000 requests', async () => {
    const res = await put('split', [
      { revision: 'r1', percent: 90 },
      { revision: 'r2', percent: 10 },
    ]);
    assert.equal(res.status, 200);
    const counts = await tally(node, '/fn/split/', 1000);
    const two = counts.get('two') ?? 0;
    assert.equal((counts.get('one') ?? 0) + two, 1000, `only the two revisions answer: ${[...counts]}`);
    // n = 1000, p = 0.1: mean 100, sd ≈ 9.5; ±5 sd keeps a false alarm below one in a million.
    assert.ok(two >= 53 && two <= 147, `r2 got ${two} of 1000 (expected 100 ± 47)`);
  });

  it('reaches a revision by tag or by id, and says which part of NAME@TAG is unknown', async () => {
    const res = await put('split', [
      { latest: true, percent: 100 },
      { revision: 'r1', tag: 'blue' },
    ]);
    assert.equal(res.status, 200);
    const view: any = await res.json();
    assert.deepEqual(view.effective, [
      { revision: 'r2', percent: 100, tags: [] },
      { revision: 'r1', percent: 0, tags: ['blue'] },
    ]);
    assert.equal(await (await node.call('/fn/split@blue/')).text(), 'one');
    assert.equal(await (await node.call('/fn/split@r1/x?y=1')).text(), 'one');
    assert.equal(await (await node.call('/fn/split@r2')).text(), 'two');
    assert.equal(await (await node.call('/fn/split/')).text(), 'two');
    const noTag = await node.call('/fn/split@green/');
    assert.deepEqual([noTag.status, noTag.headers.get('x-nimbus-error')], [404, 'NIMBUS_ERR_REVISION_NOT_FOUND']);
    const noFn = await node.call('/fn/nosuch@blue/');
    assert.deepEqual([noFn.status, noFn.headers.get('x-nimbus-error')], [404, 'NIMBUS_ERR_FUNCTION_NOT_FOUND']);
  });

  it('rolls back on the very next request, pins traffic, and `latest=100` follows deploys again', async () => {
    await put('split', [{ latest: true, percent: 100 }]);
    assert.equal(await (await node.call('/fn/split/')).text(), 'two');
    const back = await cli(node.url, 'rollback', 'split');
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /rolled back split: r2 → r1/);
    const after = await tally(node, '/fn/split/', 20, 4);
    assert.deepEqual([...after], [['one', 20]]);
    assert.match((await cli(node.url, 'get', 'split')).stdout, /traffic:\s+r1 100% \(nimbus traffic split\)/);

    // Pinned: a new deploy gets no traffic until `latest` is asked for again, but is reachable by id.
    const r3 = await node.deploy(writeSource({ 'index.js': hello('three') }), { name: 'split' });
    assert.deepEqual([r3.body.revision, r3.body.percent], ['r3', 0]);
    assert.equal(await (await node.call('/fn/split/')).text(), 'one');
    assert.equal(await (await node.call('/fn/split@r3/')).text(), 'three');
    const latest = await cli(node.url, 'traffic', 'split', 'latest=100');
    assert.equal(latest.code, 0, latest.stderr);
    assert.match(latest.stdout, /r3\s+100%/);
    assert.equal(await (await node.call('/fn/split/')).text(), 'three');

    const to = await cli(node.url, 'rollback', 'split', 'r1');
    assert.match(to.stdout, /r3 → r1/);
    assert.equal(await (await node.call('/fn/split/')).text(), 'one');
  });

  it('blue/green: one PUT switches all traffic and moves the tags with it', async () => {
    const tagged = await cli(node.url, 'traffic', 'split', 'r1=100', '--tag', 'green=r3', '--tag', 'blue=r1');
    assert.equal(tagged.code, 0, tagged.stderr);
    assert.equal(await (await node.call('/fn/split@green/')).text(), 'three');
    const swap = await cli(node.url, 'traffic', 'split', 'r3=100', '--tag', 'green=r1', '--tag', 'blue=r3');
    assert.equal(swap.code, 0, swap.stderr);
    assert.equal(await (await node.call('/fn/split/')).text(), 'three');
    assert.equal(await (await node.call('/fn/split@green/')).text(), 'one');
    const shown = await cli(node.url, 'revisions', 'split');
    assert.match(shown.stdout, /r3\s+100%\s+blue/);
    assert.match(shown.stdout, /r1\s+0%\s+green/);
  });

  it('rejects bad specs with 400 and a message naming the problem, changing nothing', async () => {
    const cases: [unknown, RegExp][] = [
      [[{ revision: 'r1', percent: 90 }], /sum to 100, got 90/],
      [[{ revision: 'r7', percent: 100 }], /no revision "r7"/],
      [[{ revision: 'r1', percent: 100, tag: 'Not A Label' }], /DNS label/],
      [[{ revision: 'r1', percent: 100, tag: 'r2' }], /looks like a revision id/],
      [
        [
          { latest: true, percent: 50.5 },
          { revision: 'r1', percent: 49.5 },
        ],
        /whole number/,
      ],
      ['r1=100', /non-empty list/],
    ];
    for (const [traffic, message] of cases) {
      const res = await put('split', traffic);
      const body: any = await res.json();
      assert.equal(res.status, 400, JSON.stringify(traffic));
      assert.equal(body.error.code, 'NIMBUS_ERR_INVALID_REQUEST');
      assert.match(body.error.message, message);
    }
    const notJson = await node.call('/api/v1/functions/split/traffic', { method: 'PUT', headers: json, body: '{' });
    assert.equal(notJson.status, 400);
    assert.equal((await put('nosuch', [{ latest: true, percent: 100 }])).status, 404);
    assert.equal(await (await node.call('/fn/split/')).text(), 'three', 'the last good spec still routes');

    const usage = await cli(node.url, 'traffic', 'split', 'r1=fifty');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^nimbus: expected REVISION=PERCENT/);
    const rollback = await cli(node.url, 'rollback', 'split', 'r9');
    assert.equal(rollback.code, 1);
    assert.match(rollback.stderr, /NIMBUS_ERR_REVISION_NOT_FOUND/);
  });
});
