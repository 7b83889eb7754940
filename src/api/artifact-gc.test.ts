import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FunctionConfig, RevisionRecord } from '../core/types.js';
import { createLocalArtifactStore, createSqliteStore } from '../store/index.js';
import type { ArtifactStore, Bucket, Store } from '../store/types.js';
import { createArtifactGc } from './artifact-gc.js';
import type { SnapshotCacheEntry } from './snapshot-step.js';

const CONFIG: FunctionConfig = {
  name: 'f',
  runtime: 'app',
  command: ['./serve'],
  env: {},
  memory: 256,
  network: 'none',
  timeout: 30,
  concurrency: 10,
  scale: { min: 0, max: 10, idleTimeout: 300 },
  snapshot: true,
};

describe('artifact collection', () => {
  let dir: string;
  let store: Store;
  let artifacts: ArtifactStore;
  let revisions: Bucket<RevisionRecord>;
  let cache: Bucket<SnapshotCacheEntry>;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-gc-'));
    store = createSqliteStore({ path: join(dir, 'db') });
    artifacts = createLocalArtifactStore({ dir: join(dir, 'artifacts') });
    revisions = store.bucket('revisions');
    cache = store.bucket('snapshots');
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const put = (text: string) => artifacts.put([{ path: 'a', mode: 0o644, content: Buffer.from(text) }]);
  const revision = (name: string, digest: string, identity: string): RevisionRecord => ({
    id: 'r1',
    function: name,
    number: 1,
    digest,
    identity,
    config: { ...CONFIG, name },
    createdAt: new Date().toISOString(),
  });

  it('sweeps unreferenced artifacts older than the minimum age and unused CRIU images; keeps held ones', async () => {
    const live = await put('live');
    const dead = await put('dead');
    const pending = await put('pending');
    await revisions.put('live/r1', revision('live', live, 'id-live'));
    await cache.put('k-dead', { digest: dead, bytes: 1, buildMs: 1, createdAt: '' });
    const discarded: string[] = [];
    const gc = createArtifactGc({
      artifacts,
      revisions,
      cache,
      listCheckpoints: async () => ['id-live', 'id-dead'],
      discardCheckpoint: async (key) => void discarded.push(key),
    });
    const now = Date.now();
    const young = await gc.sweep(60_000, now);
    assert.deepEqual(young.artifacts, [], 'no artifact is old enough yet');
    assert.deepEqual(young.checkpoints, ['id-dead'], 'images have no minimum age: only revisions make them');

    const held = await gc.hold(async () => pending);
    const result = await gc.sweep(60_000, now + 120_000);
    assert.deepEqual(result.artifacts, [dead]);
    assert.deepEqual(result.checkpoints, ['id-dead']);
    assert.deepEqual(discarded, ['id-dead', 'id-dead']);
    assert.equal(await artifacts.has(live), true);
    assert.equal(await artifacts.has(pending), true, 'a deploy holds it');
    assert.equal(await artifacts.has(dead), false);
    assert.equal(await cache.get('k-dead'), undefined, 'the cache entry naming it is gone');

    held.release();
    assert.deepEqual((await gc.sweep(60_000, now + 120_000)).artifacts, [pending]);
  });

  it('collects a deleted revision’s files only where no other revision references them', async () => {
    const shared = await put('shared');
    const own = await put('own');
    const a = revision('a', shared, 'id-a');
    const b = revision('b', shared, 'id-b');
    a.snapshot = { status: 'ready', digest: own, blob: 'snapshot.blob', node: 'v', guest: 'g', bytes: 1, buildMs: 1 };
    await revisions.put('b/r1', b);
    const discarded: string[] = [];
    const gc = createArtifactGc({
      artifacts,
      revisions,
      cache,
      discardCheckpoint: async (k) => void discarded.push(k),
    });
    const result = await gc.collectRevisions([a]);
    assert.deepEqual(result.artifacts, [own]);
    assert.deepEqual(discarded, ['id-a']);
    assert.equal(await artifacts.has(shared), true);
  });
});
