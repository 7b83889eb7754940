import assert from 'node:assert/strict';
import { existsSync, readdirSync, truncateSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatFunctionDetail } from '../../src/cli/functions.js';
import { criuSupport } from '../../src/runtime/criu/index.js';
import { findSlirp, NO_SLIRP_REASON } from '../../src/runtime/criu/network.js';
import { APPS, eventually, startTestNode, type TestNode } from '../support/nimbus.js';

// Asked once for the file (detect.ts): every CRIU test below skips with its reason where it cannot run.
const support = await criuSupport();

/**
 * CRIU checkpoint/restore of an app-mode function (docs/criu.md), through a real node: deploy the
 * Python fixture with `snapshot: true` and `network: none`, let the first instance make the
 * image, scale to zero, and the next cold start is a restore; then an app with the default
 * `network: egress` that calls out from its restored instance. Skipped, saying so, without CRIU.
 */
describe('CRIU restores of app-mode instances (snapshot: true)', () => {
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
    const image = (await eventually(() => findImages(node.dataDir)[0], 5000, 'the image on disk')) as string;
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

  it('restores a network: egress function too, with outbound connections from the restored instance', async (t) => {
    const deployed = await node.deploy(join(APPS, 'py-egress'), { name: 'ckpt-egress', scale: { idleTimeout: 1 } });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    if (!support.available) {
      assert.match(deployed.body.checkpoint.reason, /CRIU is not available/);
      return t.skip(`criu not available: ${support.reason}`);
    }
    if (!findSlirp()) {
      // Where slirp4netns is missing, egress apps start normally and `nimbus get` says why.
      assert.equal(deployed.body.checkpoint.reason, NO_SLIRP_REASON);
      assert.match(formatFunctionDetail(await detail('ckpt-egress'), Date.now()), /not used: .*slirp4netns/);
      return t.skip(`egress restores not available here: ${NO_SLIRP_REASON}`);
    }
    // The server the restored instance calls: on this machine's own non-loopback address.
    const address = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    assert.ok(address, 'this machine has a non-loopback IPv4 address');
    const server = createServer((req, res) => res.end(`outside saw ${req.url}`));
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    t.after(() => server.close());
    const url = encodeURIComponent(`http://${address}:${(server.address() as AddressInfo).port}/hi`);

    assert.deepEqual(await node.json('/fn/ckpt-egress/first'), { lang: 'python', path: '/first' });
    const ready = await eventually(
      async () => {
        const c = (await detail('ckpt-egress')).revisions[0].checkpoint;
        return c.state !== 'pending' && c;
      },
      120_000,
      'the checkpoint',
    );
    assert.equal(ready.state, 'ready', JSON.stringify(ready));
    await eventually(async () => (await instances('ckpt-egress')).length === 0, 120_000, 'scale to zero');
    assert.deepEqual(await node.json(`/fn/ckpt-egress/fetch?url=${url}`), {
      ok: true,
      status: 200,
      body: 'outside saw /hi',
    });
    const [live] = await instances('ckpt-egress');
    assert.equal(live!.startMode, 'criu');
    assert.match(formatFunctionDetail(await detail('ckpt-egress'), Date.now()), /criu restores:\s+in use \(/);
  });

  it('deleting the functions removes their images once their instances have stopped', async (t) => {
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    if (findImages(node.dataDir).length === 0)
      return t.skip('no image was made (the restore tests did not get that far)');
    for (const name of ['ckpt', 'ckpt-egress'])
      assert.equal((await node.call(`/api/v1/functions/${name}`, { method: 'DELETE' })).status, 200);
    await eventually(() => findImages(node.dataDir).length === 0, 60_000, 'the images removed');
  });
});

/** The checkpoint directories under DATA/criu. */
function findImages(dataDir: string): string[] {
  if (!existsSync(join(dataDir, 'criu'))) return [];
  return readdirSync(join(dataDir, 'criu'))
    .filter((d) => !d.includes('.new-'))
    .map((d) => join(dataDir, 'criu', d));
}
