import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect } from 'nats';
import { hasCode } from '../../core/errors.js';
import { artifactDigest } from './digest.js';
import { createNatsArtifactStore, packTree, unpackTree } from './nats-artifact-store.js';
import { file, tree } from './test-tree.js';

// The machine's NATS with JetStream; an object store bucket of this run's own, deleted after.
const URL = 'nats://127.0.0.1:4222';
const BUCKET = `nimbus_test_artifacts_${process.pid}_${Date.now().toString(36)}`;
const base = mkdtempSync(join(tmpdir(), 'nimbus-nats-artifacts-'));
let n = 0;
const node = () =>
  createNatsArtifactStore({ url: URL, bucket: BUCKET, cacheDir: join(base, `node${++n}`), storage: 'memory' });

after(async () => {
  const nc = await connect({ servers: URL });
  await (await nc.jetstream().views.os(BUCKET)).destroy();
  await nc.close();
  rmSync(base, { recursive: true, force: true });
});

describe('nats artifact store (real NATS)', () => {
  it('a tree put on one node runs on another: unpacked there, same digest, modes kept', async () => {
    const [a, b, c] = await Promise.all([node(), node(), node()]);
    try {
      const digest = await a.put(tree);
      assert.equal(digest, artifactDigest(tree));
      assert.equal(await a.put(tree), digest, 'idempotent');
      assert.equal(await b.has(digest), true);
      const dir = await b.localPath(digest);
      assert.ok(dir.startsWith(join(base, 'node2')), dir);
      assert.equal(readFileSync(join(dir, 'lib/util.mjs'), 'utf8'), 'x');
      assert.equal(statSync(join(dir, 'bin/run')).mode & 0o777, 0o555);
      assert.equal(statSync(join(dir, 'index.mjs')).mode & 0o777, 0o444);
      assert.ok((await a.list()).some((e) => e.digest === digest && e.storedAt > 0));
      // Deleted from the server: a node that never unpacked it cannot get it.
      await a.delete(digest);
      assert.equal(await c.has(digest), false);
      await assert.rejects(c.localPath(digest), (err) => hasCode(err, 'NIMBUS_ERR_REVISION_NOT_FOUND'));
      await assert.rejects(c.localPath('../../etc'), (err) => hasCode(err, 'NIMBUS_ERR_REVISION_NOT_FOUND'));
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('a node runs only the tree its digest names: an object holding another tree is refused', async () => {
    const a = await node();
    try {
      const claimed = artifactDigest(tree);
      const nc = await connect({ servers: URL });
      const other = [file('index.mjs', 'export default 666;\n')];
      await (await nc.jetstream().views.os(BUCKET)).putBlob({ name: claimed }, packTree(other));
      await nc.close();
      await assert.rejects(
        a.localPath(claimed),
        new RegExp(`sha256:${claimed} on the server holds sha256:${artifactDigest(other)}`),
      );
    } finally {
      await a.close();
    }
  });

  it('packs and unpacks trees; a blob that is not one is a clear error', () => {
    const back = unpackTree(packTree(tree), 'd');
    assert.deepEqual(
      back.map((f) => [f.path, f.mode, f.content.toString()]),
      tree.map((f) => [f.path, f.mode, f.content.toString()]),
    );
    for (const junk of [
      Buffer.from(''),
      Buffer.from('xx'),
      Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]),
      Buffer.concat([packTree(tree), Buffer.from('!')]),
    ])
      assert.throws(() => unpackTree(junk, 'd'), /sha256:d on the server is not a packed tree/);
  });

  it('an unreachable server is a clear error, not a hang', async () => {
    await assert.rejects(
      createNatsArtifactStore({ url: 'nats://127.0.0.1:1', cacheDir: join(base, 'none') }),
      /ECONNREFUSED|CONNECTION_REFUSED/,
    );
  });
});
