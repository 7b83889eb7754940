import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { FunctionRecord, RevisionRecord, RevisionSnapshot } from '../core/types.js';
import { createLocalArtifactStore } from '../store/artifacts/local-artifact-store.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import { createStoreResolver } from './resolver.js';

const dir = mkdtempSync(join(tmpdir(), 'nimbus-resolver-snap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One function with one revision carrying `snapshot`; the resolver built for a node on `nodeVersion`. */
async function setup(snapshot: (digests: { snap: string }) => RevisionSnapshot, nodeVersion: string) {
  const store = createSqliteStore({ path: ':memory:' });
  const artifacts = createLocalArtifactStore({ dir: join(dir, String(Math.random()).slice(2)) });
  const file = { path: 'index.mjs', mode: 0o644, content: Buffer.from('export default () => 1') };
  const digest = await artifacts.put([file]);
  const snap = await artifacts.put([file, { path: 'snapshot.blob', mode: 0o644, content: Buffer.from('blob') }]);
  const functions = store.bucket<FunctionRecord>('functions');
  const revisions = store.bucket<RevisionRecord>('revisions');
  const now = new Date().toISOString();
  await functions.create('f', { name: 'f', createdAt: now, updatedAt: now, latestRevision: 'r1', revisionCount: 1 });
  await revisions.put('f/r1', {
    id: 'r1',
    function: 'f',
    number: 1,
    digest,
    identity: 'x',
    entry: 'index.mjs',
    createdAt: now,
    config: {
      name: 'f',
      runtime: 'node',
      env: {},
      memory: 256,
      network: 'egress',
      timeout: 30,
      concurrency: 1,
      scale: { min: 0, max: 1, idleTimeout: 60 },
      snapshot: true,
    },
    snapshot: snapshot({ snap }),
  });
  const resolver = createStoreResolver({ functions, revisions, artifacts, nodeVersion });
  await resolver.load();
  return { resolver, artifacts, digest, snap };
}

describe('resolver: snapshot revisions', () => {
  const ready = ({ snap }: { snap: string }): RevisionSnapshot => ({
    status: 'ready',
    digest: snap,
    blob: 'snapshot.blob',
    node: 'v20.0.0',
    guest: 'g',
    bytes: 4,
    buildMs: 1,
  });

  it('restores from the blob when it was built for this Node', async () => {
    const { resolver, artifacts, snap } = await setup(ready, 'v20.0.0');
    const spec = resolver.resolve('f')!.spec;
    assert.equal(spec.snapshotBlob, 'snapshot.blob');
    assert.equal(spec.artifactDir, await artifacts.localPath(snap));
    assert.equal(spec.entry, 'index.mjs');
  });

  it('starts the normal way on another Node version, or when the snapshot failed', async () => {
    for (const { resolver, artifacts, digest } of [
      await setup(ready, 'v20.1.0'),
      await setup(() => ({ status: 'failed', error: 'x', node: 'v20.0.0', guest: 'g' }), 'v20.0.0'),
    ]) {
      const spec = resolver.resolve('f')!.spec;
      assert.equal(spec.snapshotBlob, undefined);
      assert.equal(spec.artifactDir, await artifacts.localPath(digest));
    }
  });
});
