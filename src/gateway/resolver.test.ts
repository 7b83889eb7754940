import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FunctionConfig, FunctionRecord, RevisionRecord } from '../core/types.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { ArtifactStore, Bucket, Store } from '../store/types.js';
import { createStoreResolver } from './resolver.js';

const artifacts: ArtifactStore = {
  put: async () => 'd',
  has: async () => true,
  localPath: async (digest) => `/artifacts/${digest}`,
  delete: async () => {},
};

const revision = (id: string): RevisionRecord => ({
  id,
  function: 'f',
  number: Number(id.slice(1)),
  digest: `d${id}`,
  identity: id,
  config: {
    name: 'f',
    runtime: 'node',
    env: {},
    memory: 128,
    network: 'egress',
    timeout: 30,
    concurrency: 10,
    scale: { min: 0, max: 10, idleTimeout: 300 },
  } as FunctionConfig,
  createdAt: '',
});

describe('store resolver', () => {
  let store: Store;
  let functions: Bucket<FunctionRecord>;
  let random = 0;
  const resolver = () =>
    createStoreResolver({
      functions,
      revisions: store.bucket<RevisionRecord>('revisions'),
      artifacts,
      random: () => random,
    });
  const setFn = (over: Partial<FunctionRecord>) =>
    functions.put('f', { name: 'f', createdAt: '', updatedAt: '', latestRevision: 'r3', revisionCount: 3, ...over });

  beforeEach(async () => {
    store = createSqliteStore({ path: ':memory:' });
    functions = store.bucket<FunctionRecord>('functions');
    for (const id of ['r1', 'r2', 'r3']) await store.bucket<RevisionRecord>('revisions').put(`f/${id}`, revision(id));
  });
  afterEach(() => store.close());

  it('picks a revision per call by weight, with the injected random', async () => {
    await setFn({
      traffic: [
        { revision: 'r1', percent: 90 },
        { latest: true, percent: 10 },
      ],
    });
    const r = resolver();
    await r.load();
    random = 0.5;
    assert.equal(r.resolve('f')?.revision, 'r1');
    random = 0.95;
    assert.equal(r.resolve('f')?.revision, 'r3');
    assert.equal(r.resolve('nope'), undefined);
    // Each revision's share of untagged traffic (async backlog is attributed by it).
    assert.equal(r.share(r.plan('f', 'r1')!), 0.9);
    assert.equal(r.share(r.plan('f', 'r3')!), 0.1);
    assert.equal(r.share(r.plan('f', 'r2')!), 0, 'a revision without traffic');
  });

  it('resolves tags and revision ids, routed to or not', async () => {
    await setFn({
      traffic: [
        { latest: true, percent: 100, tag: 'current' },
        { revision: 'r1', percent: 0, tag: 'old' },
      ],
    });
    const r = resolver();
    await r.load();
    assert.equal(r.resolve('f', 'old')?.revision, 'r1');
    assert.equal(r.resolve('f', 'current')?.revision, 'r3');
    assert.equal(r.resolve('f', 'r2')?.revision, 'r2', 'every revision answers to its id');
    assert.equal(r.resolve('f', 'r9'), undefined);
    assert.equal(r.plan('f', 'r2')?.spec.artifactDir, '/artifacts/dr2');
    assert.deepEqual(
      r
        .plans()
        .map((p) => p.revision)
        .sort(),
      ['r1', 'r3'],
    );
  });

  it('refresh reports what to warm and what to retire', async () => {
    await setFn({});
    const r = resolver();
    await r.load();
    await setFn({
      traffic: [
        { revision: 'r1', percent: 50 },
        { revision: 'r2', percent: 50 },
      ],
    });
    let change = await r.refresh('f');
    assert.deepEqual(
      change.referenced.map((p) => p.revision),
      ['r1', 'r2'],
    );
    assert.deepEqual(
      change.unreferenced.map((p) => p.revision),
      ['r3'],
    );
    assert.equal(change.before?.revision, 'r3');
    await functions.delete('f');
    change = await r.refresh('f');
    assert.deepEqual(change.referenced, []);
    assert.deepEqual(change.unreferenced.map((p) => p.revision).sort(), ['r1', 'r2', 'r3']);
    assert.equal(r.resolve('f'), undefined);
  });
});
