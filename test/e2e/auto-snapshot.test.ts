import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatFunctionDetail } from '../../src/cli/functions.js';
import { eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';

/** An init that busy-waits ≈ 400 ms at module level, over the default 250 ms threshold. */
const SLOW = `
const until = Date.now() + 400;
let spins = 0;
while (Date.now() < until) spins++;
export default { fetch: () => Response.json({ spun: spins > 0, instance: process.env.NIMBUS_INSTANCE }) };
`;
const FAST = `export default { fetch: () => new Response('fast') };`;

/** Automatic snapshots (snapshot: auto, the default) and the removal of a deleted function's files. */
describe('automatic snapshots and artifact collection', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode({ snapshots: { settleMs: 1500 } });
  });
  after(() => node.dispose());

  const detail = (name: string) => node.json(`/api/v1/functions/${name}`);
  const instances = async (name: string) => (await detail(name)).instances as any[];
  const artifactDir = (digest: string) => join(node.dataDir, 'artifacts', 'sha256', digest);

  it('builds a snapshot in the background after a slow init; the next cold start restores it', async () => {
    const dir = writeSource({ 'index.ts': SLOW });
    const deployed = await node.deploy(dir, { name: 'slow', scale: { idleTimeout: 1 } });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    assert.equal(deployed.body.snapshot, undefined, 'nothing is built at deploy');
    assert.equal((await detail('slow')).config.snapshot, undefined, 'auto is stored as unset (identity unchanged)');

    assert.equal((await node.json('/fn/slow/')).spun, true);
    const first = await instances('slow');
    assert.equal(first.length, 1);
    assert.ok(['spawn', 'pool'].includes(first[0].startMode), `first start: ${first[0].startMode}`);

    const snapshot = await eventually(
      async () => {
        const s = (await detail('slow')).revisions[0].snapshot;
        return s?.status === 'ready' || s?.status === 'failed' ? s : undefined;
      },
      180_000,
      'the automatic snapshot',
    );
    assert.equal(snapshot.status, 'ready', JSON.stringify(snapshot));
    assert.ok(snapshot.auto.initMs > 250, `init measured ${snapshot.auto.initMs} ms`);
    assert.equal(snapshot.auto.thresholdMs, 250);
    const text = formatFunctionDetail(await detail('slow'), Date.now());
    assert.match(text, /snapshot: +auto \(built after init took \d+ ms\): ready/);

    await eventually(async () => (await instances('slow')).length === 0, 120_000, 'scale to zero');
    assert.equal((await node.json('/fn/slow/')).spun, true);
    const second = await instances('slow');
    assert.equal(second[0].startMode, 'snapshot');

    // Redeploying the unchanged function keeps the revision and its snapshot.
    const again = await node.deploy(dir, { name: 'slow', scale: { idleTimeout: 1 } });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.revision, 'r1');
  });

  it('never builds one for a fast init, and says why', async () => {
    const deployed = await node.deploy(writeSource({ 'index.ts': FAST }), { name: 'fast' });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    assert.equal(await (await node.call('/fn/fast/')).text(), 'fast');
    const snapshot = await eventually(async () => (await detail('fast')).revisions[0].snapshot, 30_000, 'a decision');
    assert.equal(snapshot.status, 'skipped', JSON.stringify(snapshot));
    assert.ok(snapshot.auto.initMs <= 250);
    assert.match(formatFunctionDetail(await detail('fast'), Date.now()), /snapshot: +auto: not built, init took/);
  });

  it('snapshot: false opts out', async () => {
    const deployed = await node.deploy(writeSource({ 'index.ts': SLOW }), { name: 'slow-off', snapshot: false });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    assert.equal((await detail('slow-off')).config.snapshot, false);
    assert.equal((await node.json('/fn/slow-off/')).spun, true);
    assert.match(formatFunctionDetail(await detail('slow-off'), Date.now()), /snapshot: +off/);
    assert.equal((await detail('slow-off')).revisions[0].snapshot, undefined);
  });

  it('deleting a function removes its artifact and snapshot blob; a shared artifact survives', async () => {
    const dir = writeSource({ 'index.ts': 'export default { fetch: () => new Response("shared") };' });
    const usedBefore = diskUsage(join(node.dataDir, 'artifacts', 'sha256'));
    const a = await node.deploy(dir, { name: 'share-a', snapshot: true });
    const b = await node.deploy(dir, { name: 'share-b' });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal(b.status, 201, JSON.stringify(b.body));
    assert.equal(a.body.digest, b.body.digest, 'same code, same artifact');
    assert.equal(a.body.snapshot.status, 'ready', JSON.stringify(a.body.snapshot));
    const blobDir = artifactDir(a.body.snapshot.digest);
    assert.ok(existsSync(blobDir));
    assert.equal(await (await node.call('/fn/share-a/')).text(), 'shared');
    assert.equal((await instances('share-a'))[0].startMode, 'snapshot');

    assert.equal((await node.call('/api/v1/functions/share-a', { method: 'DELETE' })).status, 200);
    await eventually(() => !existsSync(blobDir), 60_000, 'the snapshot blob removed');
    assert.ok(existsSync(artifactDir(a.body.digest)), 'share-b still uses the artifact');
    assert.equal(await (await node.call('/fn/share-b/')).text(), 'shared');

    assert.equal((await node.call('/api/v1/functions/share-b', { method: 'DELETE' })).status, 200);
    await eventually(() => !existsSync(artifactDir(a.body.digest)), 60_000, 'the artifact removed');
    assert.equal(diskUsage(join(node.dataDir, 'artifacts', 'sha256')), usedBefore, 'disk usage is back');
  });

  it('deleting the slow function removes its automatic snapshot; the artifact goes with the last function using it', async () => {
    const rev = (await detail('slow')).revisions[0];
    assert.equal(rev.snapshot.status, 'ready');
    assert.equal((await node.call('/api/v1/functions/slow', { method: 'DELETE' })).status, 200);
    await eventually(() => !existsSync(artifactDir(rev.snapshot.digest)), 60_000, 'the blob removed');
    // slow-off has the same code: the artifact stays until it goes too.
    assert.ok(existsSync(artifactDir(rev.digest)));
    assert.equal((await node.call('/api/v1/functions/slow-off', { method: 'DELETE' })).status, 200);
    await eventually(() => !existsSync(artifactDir(rev.digest)), 60_000, 'the artifact removed');
  });
});

/** Bytes of the files under `dir`. */
function diskUsage(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  return total;
}
