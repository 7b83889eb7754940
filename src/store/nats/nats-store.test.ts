import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect } from 'nats';
import { hasCode } from '../../core/errors.js';
import { runStoreConformance } from '../conformance.js';
import type { WatchEvent } from '../types.js';
import { createNatsStore } from './nats-store.js';

// The machine's NATS with JetStream (started for every session and CI run). Memory storage and a
// prefix of this run's own: nothing is left on the server after the file's `after`.
const URL = 'nats://127.0.0.1:4222';
const PREFIX = `nimbus_test_${process.pid}_${Date.now().toString(36)}_`;
const open = () => createNatsStore({ url: URL, prefix: PREFIX, storage: 'memory' });

after(async () => {
  const nc = await connect({ servers: URL });
  const jsm = await nc.jetstreamManager();
  for await (const s of jsm.streams.list())
    if (s.config.name.startsWith(`KV_${PREFIX}`)) await jsm.streams.delete(s.config.name);
  await nc.close();
});

runStoreConformance('nats jetstream kv (real NATS)', open);

describe('nats store: two nodes on one JetStream', () => {
  it('a write on one node is seen by the other: get, list, watch, and compare-and-swap across them', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const name = `shared_${Date.now().toString(36)}`;
      const onA = a.bucket<{ v: number }>(name);
      const onB = b.bucket<{ v: number }>(name);
      await onB.list(); // B's watcher is set up (its first read resolves after it)
      const ac = new AbortController();
      const seenByB = onB.watch({ signal: ac.signal })[Symbol.asyncIterator]();
      const r1 = await onA.create('fn/x', { v: 1 });
      assert.deepEqual(await onB.get('fn/x'), { key: 'fn/x', value: { v: 1 }, revision: r1 });
      const first = (await seenByB.next()).value as WatchEvent<{ v: number }>;
      assert.deepEqual(first, { type: 'put', entry: { key: 'fn/x', value: { v: 1 }, revision: r1 } });
      // Both nodes try to move r1 on: exactly one wins, across processes' connections.
      const results = await Promise.allSettled([onA.update('fn/x', { v: 2 }, r1), onB.update('fn/x', { v: 3 }, r1)]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      assert.ok(
        hasCode((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason, 'NIMBUS_ERR_CONFLICT'),
      );
      const second = (await seenByB.next()).value as WatchEvent<{ v: number }>;
      assert.equal(second.type, 'put');
      await onA.delete('fn/x');
      assert.equal((await seenByB.next()).value?.type, 'delete');
      assert.deepEqual(await onB.list(), []);
      ac.abort();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a bucket the server refuses fails its operations and ends its watches, not a hang', {
    timeout: 10_000,
  }, async () => {
    const store = await createNatsStore({ url: URL, prefix: 'not.valid.', storage: 'memory' });
    try {
      const bucket = store.bucket('x');
      const seen: unknown[] = [];
      const loop = (async () => {
        for await (const e of bucket.watch()) seen.push(e);
      })();
      await assert.rejects(bucket.put('k', 1));
      await loop;
      assert.deepEqual(seen, []);
    } finally {
      await store.close();
    }
  });

  it('an unreachable server is a clear error, not a hang', async () => {
    await assert.rejects(createNatsStore({ url: 'nats://127.0.0.1:1' }), /ECONNREFUSED|CONNECTION_REFUSED/);
  });
});
