import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FunctionConfig, RevisionRecord } from '../core/types.js';
import type { SnapshotBuilder } from '../runtime/snapshot/index.js';
import { createLocalArtifactStore, createSqliteStore } from '../store/index.js';
import type { ArtifactStore, Bucket, Store } from '../store/types.js';
import { createArtifactGc, digestsOf } from './artifact-gc.js';
import { type AutoSnapshots, createAutoSnapshots } from './auto-snapshot.js';
import type { SnapshotCacheEntry } from './snapshot-step.js';

/** A builder that makes a small blob instantly, counting its builds. */
function fakeBuilder(nodeVersion = process.version): SnapshotBuilder & { builds: number } {
  return {
    nodeVersion,
    guestVersion: 'test-guest',
    sandboxed: false,
    builds: 0,
    async build(request) {
      this.builds++;
      return { blob: Buffer.from(`blob of ${request.function} for ${nodeVersion}`), buildMs: 1 };
    },
    close() {},
  };
}

const CONFIG: FunctionConfig = {
  name: 'f',
  runtime: 'node',
  env: {},
  memory: 256,
  network: 'egress',
  timeout: 30,
  concurrency: 10,
  scale: { min: 0, max: 10, idleTimeout: 300 },
};

describe('automatic snapshots (the decision and the record)', () => {
  let dir: string;
  let store: Store;
  let artifacts: ArtifactStore;
  let revisions: Bucket<RevisionRecord>;
  let cache: Bucket<SnapshotCacheEntry>;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-auto-snap-'));
    store = createSqliteStore({ path: join(dir, 'db') });
    artifacts = createLocalArtifactStore({ dir: join(dir, 'artifacts') });
    revisions = store.bucket('revisions');
    cache = store.bucket('snapshots');
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const deployRevision = async (name: string, config: Partial<FunctionConfig> = {}): Promise<RevisionRecord> => {
    const digest = await artifacts.put([
      { path: 'index.mjs', mode: 0o644, content: Buffer.from(`export default {} // ${name}`) },
    ]);
    const rev: RevisionRecord = {
      id: 'r1',
      function: name,
      number: 1,
      digest,
      identity: `id-${name}`,
      config: { ...CONFIG, name, ...config },
      entry: 'index.mjs',
      createdAt: new Date().toISOString(),
    };
    await revisions.put(`${name}/r1`, rev);
    return rev;
  };
  const get = async (name: string) => (await revisions.get(`${name}/r1`))!.value;
  const auto = (builder: SnapshotBuilder, ready: string[] = []): AutoSnapshots => {
    const gc = createArtifactGc({ artifacts, revisions, cache });
    return createAutoSnapshots({
      deps: { builder, artifacts, cache },
      revisions,
      thresholdMs: 250,
      onReady: (rev) => ready.push(rev.function),
      collect: async (digests) => void (await gc.collect(digests)),
    });
  };

  it('records a fast init as skipped, builds after a slow one, and tells who serves it', async () => {
    await deployRevision('a');
    const builder = fakeBuilder();
    const ready: string[] = [];
    const snaps = auto(builder, ready);
    snaps.report('a', 'r1', 20);
    await snaps.settled();
    assert.deepEqual((await get('a')).snapshot, {
      status: 'skipped',
      node: process.version,
      guest: 'test-guest',
      auto: { initMs: 20, thresholdMs: 250 },
    });
    snaps.report('a', 'r1', 30);
    await snaps.settled();
    assert.equal(builder.builds, 0);

    // A burst of slow starts makes one build.
    for (let i = 0; i < 3; i++) snaps.report('a', 'r1', 400 + i);
    await snaps.settled();
    const snapshot = (await get('a')).snapshot;
    assert.equal(snapshot?.status, 'ready', JSON.stringify(snapshot));
    assert.deepEqual(snapshot?.auto, { initMs: 400, thresholdMs: 250 });
    assert.equal(builder.builds, 1);
    assert.deepEqual(ready, ['a']);
    // Ready: later reports change nothing.
    snaps.report('a', 'r1', 900);
    await snaps.settled();
    assert.equal(builder.builds, 1);
  });

  it('leaves snapshot: false alone, and true only when its blob is for this Node', async () => {
    await deployRevision('off', { snapshot: false });
    await deployRevision('on', { snapshot: true });
    const builder = fakeBuilder();
    const snaps = auto(builder);
    snaps.report('off', 'r1', 5000);
    snaps.report('on', 'r1', 5000);
    await snaps.settled();
    assert.equal(builder.builds, 0);
    assert.equal((await get('off')).snapshot, undefined);
  });

  it('rebuilds a blob made by another Node version and removes the old one', async () => {
    await deployRevision('old', { snapshot: true });
    const before = auto(fakeBuilder('v18.0.0'));
    // As a deploy on the old node would have: a ready blob for v18 (built here through a report).
    await revisions.put('old/r1', {
      ...(await get('old')),
      config: { ...(await get('old')).config, snapshot: undefined },
    });
    before.report('old', 'r1', 1000);
    await before.settled();
    const oldSnap = (await get('old')).snapshot;
    assert.equal(oldSnap?.status, 'ready');
    assert.equal(oldSnap?.node, 'v18.0.0');
    const oldDigest = oldSnap?.status === 'ready' ? oldSnap.digest : '';
    assert.ok(await artifacts.has(oldDigest));
    await revisions.put('old/r1', { ...(await get('old')), config: { ...(await get('old')).config, snapshot: true } });

    const builder = fakeBuilder();
    const snaps = auto(builder);
    snaps.report('old', 'r1', 5); // `true`: no threshold, only the Node version matters
    await snaps.settled();
    const snapshot = (await get('old')).snapshot;
    assert.equal(snapshot?.status, 'ready');
    assert.equal(snapshot?.node, process.version);
    assert.equal(snapshot?.auto, undefined);
    assert.equal(await artifacts.has(oldDigest), false, 'the old blob is collected');
    assert.ok(await artifacts.has((await get('old')).digest), 'the artifact stays');
  });

  it('collects the blob of a revision deleted while it was built', async () => {
    const rev = await deployRevision('gone');
    const builder = fakeBuilder();
    const original = builder.build.bind(builder);
    builder.build = async (request) => {
      await revisions.delete('gone/r1');
      return original(request);
    };
    const snaps = auto(builder);
    snaps.report('gone', 'r1', 1000);
    await snaps.settled();
    assert.equal(builder.builds, 1);
    const live = new Set((await revisions.list()).flatMap((e) => digestsOf(e.value)));
    const stored = readdirSync(join(dir, 'artifacts', 'sha256'));
    const orphans = stored.filter((d) => !live.has(d) && d !== rev.digest);
    assert.deepEqual(orphans, [], 'the blob built for the deleted revision is removed');
    for (const { value } of await cache.list()) assert.ok(await artifacts.has(value.digest), 'no stale cache entry');
    assert.ok(await artifacts.has(rev.digest), 'the artifact itself is the delete’s to collect');
  });
});
