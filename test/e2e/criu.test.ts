import assert from 'node:assert/strict';
import { existsSync, readdirSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatFunctionDetail } from '../../src/cli/functions.js';
import { criuSupport } from '../../src/runtime/criu/index.js';
import { APPS, eventually, startTestNode, type TestNode } from '../support/nimbus.js';

/**
 * CRIU checkpoint/restore of an app-mode function (docs/criu.md), through a real node: deploy the
 * Python fixture with `snapshot: true` and `network: none`, let the first instance make the
 * image, scale to zero, and the next cold start is a restore. Skipped, saying so, without CRIU.
 */
describe('CRIU restores of app-mode instances (snapshot: true)', () => {
  const support = criuSupport();
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(() => node.dispose());

  const detail = (name: string) => node.json(`/api/v1/functions/${name}`);
  const instances = async (name: string) =>
    (await node.json(`/api/v1/functions/${name}/instances`)).instances as { startMode?: string; revision: string }[];

  it('restores the next cold start from the image, shows it in nimbus get, and falls back on a broken image', async (t) => {
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    const deployed = await node.deploy(join(APPS, 'py-app'), {
      name: 'ckpt',
      snapshot: true,
      network: 'none',
      scale: { idleTimeout: 1 },
    });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    const first = await node.json('/fn/ckpt/first');
    assert.equal(first.path, '/first');
    const before = (await detail('ckpt')).revisions[0].checkpoint;
    if (before.state === 'unsupported') return t.skip(`criu not usable here: ${before.reason}`);

    const ready = await eventually(
      async () => {
        const c = (await detail('ckpt')).revisions[0].checkpoint;
        return c.state !== 'pending' && c;
      },
      120_000,
      'the checkpoint',
    );
    assert.equal(ready.state, 'ready', JSON.stringify(ready));
    assert.equal(ready.restores, true);
    assert.ok(ready.image.bytes > 1_000_000);

    await eventually(async () => (await instances('ckpt')).length === 0, 120_000, 'scale to zero');
    const restored = await node.json('/fn/ckpt/again?x=1');
    assert.deepEqual(restored, { lang: 'python', method: 'GET', path: '/again?x=1', body: '' });
    const live = await instances('ckpt');
    assert.equal(live.length, 1);
    assert.equal(live[0]!.startMode, 'criu');

    const d = await detail('ckpt');
    assert.equal(d.revisions[0].checkpoint.restored, 1);
    assert.match(
      formatFunctionDetail(d, Date.now()),
      /criu restores:\s+in use \(.* image, dumped in \d+ ms, 1 restored\)/,
    );

    // A broken image: the next cold start is a normal one, and the instance log says why.
    await eventually(async () => (await instances('ckpt')).length === 0, 120_000, 'scale to zero again');
    const image = (await eventually(() => findImage(node.dataDir), 5000, 'the image on disk')) as string;
    truncateSync(join(image, 'img', 'pstree.img'), 3);
    const fallback = await node.json('/fn/ckpt/fallback');
    assert.equal(fallback.path, '/fallback');
    const [fresh] = await instances('ckpt');
    assert.notEqual(fresh!.startMode, 'criu');
    const line = await eventually(
      async () => {
        const { logs } = await node.json('/api/v1/functions/ckpt/logs?limit=1000');
        return (logs as { stream: string; line: string }[]).find((l) => /CRIU restore failed/.test(l.line));
      },
      10_000,
      'the fallback log line',
    );
    assert.equal(line!.stream, 'system');
    assert.match(line!.line, /starting normally: criu restore failed/);
  });

  it('says why restores are not used for a function in the host network', async () => {
    const deployed = await node.deploy(join(APPS, 'py-app'), { name: 'ckpt-egress', snapshot: true });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    assert.equal(deployed.body.checkpoint.restores, false, 'the deploy answer says so too');
    const c = (await detail('ckpt-egress')).revisions[0].checkpoint;
    assert.equal(c.restores, false);
    assert.match(c.reason, support.available ? /network: none/ : /CRIU is not available/);
    assert.match(formatFunctionDetail(await detail('ckpt-egress'), Date.now()), /criu restores:\s+not used: /);
  });

  it('deleting the function removes its image once its instances have stopped', async (t) => {
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    const image = findImage(node.dataDir);
    if (!image) return t.skip('no image was made (the restore test did not get that far)');
    assert.equal((await node.call('/api/v1/functions/ckpt', { method: 'DELETE' })).status, 200);
    await eventually(() => !existsSync(image), 60_000, 'the image removed');
  });
});

/** The one checkpoint directory under DATA/criu. */
function findImage(dataDir: string): string | undefined {
  const dirs = readdirSync(join(dataDir, 'criu')).filter((d) => !d.includes('.new-'));
  return dirs.length === 1 ? join(dataDir, 'criu', dirs[0]!) : undefined;
}
