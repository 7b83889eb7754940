import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestNode, type TestNode, writeSource } from '../support/nimbus.js';
import { cli, driveUntil, tally } from '../support/traffic.js';

// Short steps so a rollout ends in seconds; latency is judged generously here (the p95 rule has
// its unit tests) because a loaded test machine makes latencies noisy. scale.min keeps the canary
// warm from the start, as it would be in production.
const ROLLOUT = `rollout:
  steps: [20, 50, 100]
  interval: 1.5
  minRequests: 20
  maxErrorRateIncrease: 10
  maxP95Ratio: 5
  p95FloorMs: 1000
scale:
  min: 1
`;

const healthy = (word: string) => ({
  'index.js': `export default { fetch: () => new Response('${word}') };\n`,
  'nimbus.yaml': `name: shop\n${ROLLOUT}`,
});

/** Fails 3 requests in every 10 with a 500. */
const flaky = {
  'index.js': `let n = 0;
export default { fetch: () => (n++ % 10 < 3 ? new Response('boom', { status: 500 }) : new Response('flaky')) };
`,
  'nimbus.yaml': `name: shop\n${ROLLOUT}`,
};

describe('automated canary', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
    const first = await node.deploy(
      writeSource({ 'index.js': "export default { fetch: () => new Response('v1') };\n" }),
      {
        name: 'shop',
      },
    );
    assert.equal(first.status, 201);
    assert.equal(first.body.rollout, undefined, 'a first revision has nothing to be compared with');
  });
  after(() => node.dispose());

  const finished = async () => {
    const r = await node.json('/api/v1/functions/shop/rollout');
    return r.status !== 'running' ? r : undefined;
  };

  it('rolls back a canary that fails 30% of its requests, and records why', async () => {
    const deployed = await node.deploy(writeSource(flaky));
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    assert.deepEqual(
      [deployed.body.revision, deployed.body.rollout.status, deployed.body.percent],
      ['r2', 'running', 20],
    );

    const { value: rollout, requests } = await driveUntil(node, '/fn/shop/', finished);
    assert.equal(rollout.status, 'rolled-back', JSON.stringify(rollout.events));
    const decision = rollout.events.at(-1);
    assert.equal(decision.action, 'rollback');
    assert.ok(decision.canary.requests >= 20, `judged on ${decision.canary.requests} canary requests`);
    assert.ok(
      decision.canary.errorRate >= 15 && decision.canary.errorRate <= 45,
      `canary error rate ${decision.canary.errorRate}% (of ${decision.canary.requests})`,
    );
    assert.equal(decision.stable.errorRate, 0);
    assert.ok(requests > 0);

    // All traffic is back on r1 at once, and `latest` keeps standing for it.
    assert.deepEqual([...(await tally(node, '/fn/shop/', 30, 4))], [['v1', 30]]);
    const traffic = await node.json('/api/v1/functions/shop/traffic');
    assert.deepEqual([traffic.latestRevision, traffic.latestReady], ['r2', 'r1']);
    assert.deepEqual(traffic.traffic, [{ latest: true, percent: 100 }]);
    // The failed revision can still be reached directly, to debug it.
    assert.match(await (await node.call('/fn/shop@r2/')).text(), /^(flaky|boom)$/);
  });

  it('promotes a healthy canary step by step to all the traffic', async () => {
    const deployed = await node.deploy(writeSource(healthy('v3')));
    assert.deepEqual([deployed.body.revision, deployed.body.percent], ['r3', 20]);

    const { value: rollout } = await driveUntil(node, '/fn/shop/', finished);
    assert.equal(rollout.status, 'promoted', JSON.stringify(rollout.events));
    assert.deepEqual(
      rollout.events.filter((e: any) => e.action !== 'wait').map((e: any) => [e.action, e.percent]),
      [
        ['start', 20],
        ['step', 50],
        ['promote', 100],
      ],
    );
    assert.equal(rollout.stable.join(), 'r1');
    assert.deepEqual([...(await tally(node, '/fn/shop/', 30, 4))], [['v3', 30]]);

    const shown = await cli(node.url, 'rollout', 'shop');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /status:\s+promoted/);
    assert.match(shown.stdout, /promote\s+100%/);
  });

  it('deploy --canary starts one with the default steps; rollout --abort restores the traffic', async () => {
    const dir = writeSource({ 'index.js': "export default { fetch: () => new Response('v4') };\n" });
    const deployed = await cli(node.url, 'deploy', dir, '--name', 'shop', '--canary');
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stderr, /canary: r4 gets 5% \(steps 5 → 25 → 50 → 100, every 60 s\)/);
    const running = await node.json('/api/v1/functions/shop/rollout');
    assert.deepEqual([running.status, running.canary, running.percent], ['running', 'r4', 5]);
    const traffic = await node.json('/api/v1/functions/shop/traffic');
    assert.deepEqual(
      traffic.effective.map((e: any) => [e.revision, e.percent]),
      [
        ['r3', 95],
        ['r4', 5],
      ],
    );

    const aborted = await cli(node.url, 'rollout', 'shop', '--abort');
    assert.equal(aborted.code, 0, aborted.stderr);
    assert.match(aborted.stdout, /status:\s+aborted/);
    assert.deepEqual([...(await tally(node, '/fn/shop/', 20, 4))], [['v3', 20]]);
    const none = await node.call('/api/v1/functions/shop/rollout', { method: 'DELETE' });
    assert.equal(((await none.json()) as any).error.code, 'NIMBUS_ERR_ROLLOUT_NOT_FOUND');
  });

  it('rejects a bad rollout: block naming the field', async () => {
    const bad = await node.deploy(
      writeSource({
        'index.js': 'export default { fetch: () => new Response("x") };\n',
        'nimbus.yaml': 'name: shop\nrollout:\n  steps: [50, 20]\n',
      }),
    );
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'NIMBUS_ERR_INVALID_MANIFEST');
    assert.match(bad.body.error.message, /rollout\.steps: expected increasing whole percents/);
  });
});

describe('a rollout across a node restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-canary-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('resumes, observing its current step afresh', async () => {
    let node = await startTestNode({ dataDir });
    try {
      await node.deploy(writeSource({ 'index.js': "export default { fetch: () => new Response('a') };\n" }), {
        name: 'slow',
      });
      const b = writeSource({
        'index.js': "export default { fetch: () => new Response('b') };\n",
        'nimbus.yaml': 'name: slow\nrollout:\n  interval: 1h\n',
      });
      assert.equal((await node.deploy(b)).body.rollout.status, 'running');
    } finally {
      await node.close();
    }
    node = await startTestNode({ dataDir });
    try {
      const rollout = await node.json('/api/v1/functions/slow/rollout');
      assert.deepEqual([rollout.status, rollout.percent], ['running', 5]);
      assert.equal(rollout.events.at(-1).action, 'resume');
      const counts = await tally(node, '/fn/slow/', 200, 4);
      assert.ok((counts.get('b') ?? 0) > 0 && (counts.get('a') ?? 0) > 150, `split after restart: ${[...counts]}`);
    } finally {
      await node.close();
    }
  });
});
