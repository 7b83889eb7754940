import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formatFunctionDetail } from '../../src/cli/functions.js';
import { eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';

/**
 * A function whose init leaves traces: a counter and a timestamp taken at module level, values
 * drawn at init, and both hooks. `?hold` keeps the request open a moment, so concurrent requests
 * land on different instances.
 */
const TRACED = `
import { randomUUID } from 'node:crypto';
const builtAt = Date.now();
let initRuns = 0;
initRuns++;
const atInit = { random: Math.random(), uuid: randomUUID() };
let beforeRuns = 0;
let restores = 0;
export function beforeSnapshot() { beforeRuns++; }
export async function afterRestore() { await Promise.resolve(); restores++; }
export default {
  async fetch(req: Request, env: Record<string, string>) {
    if (new URL(req.url).searchParams.has('hold')) await new Promise((r) => setTimeout(r, 400));
    return Response.json({
      builtAt, initRuns, beforeRuns, restores, atInit, color: env.COLOR,
      random: Math.random(), uuid: randomUUID(), instance: process.env.NIMBUS_INSTANCE,
      timeOrigin: performance.timeOrigin,
    });
  },
};
`;

describe('V8 startup snapshots (snapshot: true)', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode({ snapshots: { settleMs: 1500 } });
  });
  after(() => node.dispose());

  it('serves the first request from an instance restored from the blob: init ran at build, not at restore', async () => {
    const dir = writeSource({ 'index.ts': TRACED, 'nimbus.yaml': 'name: snap\nsnapshot: true\nenv:\n  COLOR: blue\n' });
    const deployed = await node.deploy(dir);
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    const deployedAt = Date.now();
    const { snapshot } = deployed.body;
    assert.equal(snapshot.status, 'ready', JSON.stringify(snapshot));
    assert.equal(snapshot.node, process.version);
    assert.ok(snapshot.bytes > 1024 * 1024, `blob of ${snapshot.bytes} bytes`);

    const first = await node.json('/fn/snap/');
    assert.equal(first.initRuns, 1);
    assert.equal(first.beforeRuns, 1, 'beforeSnapshot ran at build');
    assert.equal(first.restores, 1, 'afterRestore ran in the instance');
    assert.ok(first.builtAt <= deployedAt, 'the module-level timestamp is from the build');
    assert.ok(first.timeOrigin >= first.builtAt, 'the clocks are the instance’s own');
    assert.equal(first.color, 'blue');

    const detail = await node.json('/api/v1/functions/snap');
    assert.equal(detail.instances.length, 1);
    assert.equal(detail.instances[0].startMode, 'snapshot');
    assert.equal(detail.revisions.at(-1).snapshot.status, 'ready');
    assert.match(formatFunctionDetail(detail, Date.now()), /snapshot: +ready \(/);
  });

  it('makes every restored instance unique: Math.random, crypto.randomUUID, instance id', async () => {
    const dir = writeSource({ 'index.ts': TRACED });
    const deployed = await node.deploy(dir, { name: 'twins', snapshot: true, concurrency: 1, scale: { min: 2 } });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    assert.equal(deployed.body.snapshot.status, 'ready');
    await eventually(
      async () =>
        (await node.json('/api/v1/functions/twins')).instances.filter((i: any) => i.state === 'ready').length === 2,
      60_000,
      'two ready instances',
    );
    // concurrency 1: while the first request holds its instance, the second takes the other one.
    const [a, b] = await Promise.all([node.json('/fn/twins/?hold'), node.json('/fn/twins/?hold')]);
    assert.notEqual(a.instance, b.instance, 'two instances served');
    for (const r of [a, b]) {
      assert.equal(r.initRuns, 1);
      assert.equal(r.restores, 1);
    }
    assert.equal(a.atInit.uuid, b.atInit.uuid, 'values drawn at init are shared (documented)');
    assert.notEqual(a.random, b.random);
    assert.notEqual(a.uuid, b.uuid);
    // The autoscaler may add a third instance for the burst; the two that served were restored.
    const { instances } = await node.json('/api/v1/functions/twins');
    const served = instances.filter((i: any) => i.id === a.instance || i.id === b.instance);
    assert.deepEqual(
      served.map((i: any) => i.startMode),
      ['snapshot', 'snapshot'],
    );
  });

  it('reports a snapshot that cannot be built and still deploys and serves without it', async () => {
    const dir = writeSource({
      'index.ts': 'setInterval(() => {}, 60_000);\nexport default () => new Response("still serving");\n',
    });
    const deployed = await node.deploy(dir, { name: 'ticker', snapshot: true });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    const { snapshot } = deployed.body;
    assert.equal(snapshot.status, 'failed');
    assert.match(snapshot.error, /left handles open.*Timeout/);
    const res = await node.call('/fn/ticker/');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'still serving');
    const detail = await node.json('/api/v1/functions/ticker');
    assert.notEqual(detail.instances[0].startMode, 'snapshot');
    assert.match(formatFunctionDetail(detail, Date.now()), /snapshot: +FAILED, instances start without one: .*Timeout/);
  });

  it('fails the deploy when the snapshot is required and cannot be built', async () => {
    const dir = writeSource({
      'index.ts': 'setInterval(() => {}, 60_000);\nexport default () => new Response("x");\n',
    });
    const deployed = await node.deploy(dir, { name: 'strict', snapshot: 'required' });
    assert.equal(deployed.status, 400);
    assert.equal(deployed.body.error.code, 'NIMBUS_ERR_SNAPSHOT_FAILED');
    assert.match(deployed.body.error.message, /Timeout/);
    assert.equal((await node.call('/api/v1/functions/strict')).status, 404);
  });
});
