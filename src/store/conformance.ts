import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { hasCode } from '../core/errors.js';
import { watchCases } from './conformance-watch.js';
import type { Bucket, Store } from './types.js';

/**
 * The behaviour every Store backend must show, as a node:test suite. Call it from the backend's
 * own test file: `runStoreConformance('sqlite', () => createSqliteStore({ path: ':memory:' }))`.
 *
 * Each test takes a fresh store from `makeStore` and closes it afterwards, and uses a bucket name
 * of its own, so a backend whose stores share a server (JetStream KV) can run it too. Nothing here
 * depends on timing except the bound on how long a watch may take to deliver (`watchTimeoutMs`).
 */
export function runStoreConformance(
  name: string,
  makeStore: () => Store | Promise<Store>,
  options: { watchTimeoutMs?: number } = {},
): void {
  const watchTimeoutMs = options.watchTimeoutMs ?? 2000;
  let seq = 0;
  let store: Store;
  let bucket: Bucket<unknown>;
  const freshName = () => `conf_${process.pid}_${Date.now().toString(36)}_${++seq}`;

  const conflict = (err: unknown) => hasCode(err, 'NIMBUS_ERR_CONFLICT');
  const invalid = (err: unknown) => hasCode(err, 'NIMBUS_ERR_INVALID_REQUEST');

  describe(`Store conformance: ${name}`, () => {
    beforeEach(async () => {
      store = await makeStore();
      bucket = store.bucket(freshName());
    });
    afterEach(async () => {
      await store.close();
    });

    describe('create / get', () => {
      it('creates a key and returns a positive revision that get reports', async () => {
        const rev = await bucket.create('fn/hello', { a: 1 });
        assert.ok(Number.isInteger(rev) && rev > 0);
        assert.deepEqual(await bucket.get('fn/hello'), { key: 'fn/hello', value: { a: 1 }, revision: rev });
      });
      it('get returns undefined for a missing key', async () => {
        assert.equal(await bucket.get('missing'), undefined);
      });
      it('create fails with NIMBUS_ERR_CONFLICT when the key exists, keeping the old value', async () => {
        const rev = await bucket.create('k', 'first');
        await assert.rejects(bucket.create('k', 'second'), conflict);
        assert.deepEqual(await bucket.get('k'), { key: 'k', value: 'first', revision: rev });
      });
    });

    describe('update (compare-and-swap)', () => {
      it('replaces the value when the expected revision matches, with a higher revision', async () => {
        const r1 = await bucket.create('k', 1);
        const r2 = await bucket.update('k', 2, r1);
        assert.ok(r2 > r1);
        assert.deepEqual(await bucket.get('k'), { key: 'k', value: 2, revision: r2 });
      });
      it('fails with NIMBUS_ERR_CONFLICT on a stale revision and leaves the value alone', async () => {
        const r1 = await bucket.create('k', 1);
        const r2 = await bucket.update('k', 2, r1);
        await assert.rejects(bucket.update('k', 3, r1), conflict);
        assert.deepEqual(await bucket.get('k'), { key: 'k', value: 2, revision: r2 });
      });
      it('fails with NIMBUS_ERR_CONFLICT when the key does not exist', async () => {
        await assert.rejects(bucket.update('nope', 1, 1), conflict);
        assert.equal(await bucket.get('nope'), undefined);
      });
      it('lets exactly one of two racing updates from the same revision win', async () => {
        const r1 = await bucket.create('k', 0);
        const results = await Promise.allSettled([bucket.update('k', 'a', r1), bucket.update('k', 'b', r1)]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.ok(conflict(failed.reason));
      });
    });

    describe('put / delete', () => {
      it('put creates a missing key and replaces an existing one without a check', async () => {
        const r1 = await bucket.put('k', 'a');
        const r2 = await bucket.put('k', 'b');
        assert.ok(r2 > r1);
        assert.deepEqual(await bucket.get('k'), { key: 'k', value: 'b', revision: r2 });
      });
      it('delete without an expected revision removes the key', async () => {
        await bucket.put('k', 1);
        await bucket.delete('k');
        assert.equal(await bucket.get('k'), undefined);
        assert.deepEqual(await bucket.list(), []);
      });
      it('delete of a missing key without an expected revision is not an error', async () => {
        await bucket.delete('never-existed');
        await bucket.put('k', 1);
        await bucket.delete('k');
        await bucket.delete('k');
      });
      it('delete with a matching revision removes; with another fails with NIMBUS_ERR_CONFLICT', async () => {
        const r1 = await bucket.put('k', 1);
        const r2 = await bucket.put('k', 2);
        await assert.rejects(bucket.delete('k', r1), conflict);
        assert.equal((await bucket.get('k'))?.value, 2);
        await bucket.delete('k', r2);
        assert.equal(await bucket.get('k'), undefined);
      });
      it('delete with an expected revision of a missing key fails with NIMBUS_ERR_CONFLICT', async () => {
        await assert.rejects(bucket.delete('nope', 1), conflict);
      });
      it('a key can be created again after it was deleted', async () => {
        const r1 = await bucket.create('k', 1);
        await bucket.delete('k');
        const r2 = await bucket.create('k', 2);
        assert.ok(r2 > r1);
        assert.equal((await bucket.get('k'))?.value, 2);
      });
    });

    describe('list', () => {
      it('lists every entry sorted by key, or those under a prefix', async () => {
        for (const k of ['fn/b', 'rev/x', 'fn/a', 'fn/c/1', 'fnx']) await bucket.put(k, k);
        assert.deepEqual(
          (await bucket.list()).map((e) => e.key),
          ['fn/a', 'fn/b', 'fn/c/1', 'fnx', 'rev/x'],
        );
        assert.deepEqual(
          (await bucket.list('fn/')).map((e) => e.key),
          ['fn/a', 'fn/b', 'fn/c/1'],
        );
        assert.deepEqual(await bucket.list('zzz'), []);
      });
      it('treats prefix characters literally (no wildcards)', async () => {
        for (const k of ['a_b', 'axb', 'a.b', 'a-b']) await bucket.put(k, 1);
        assert.deepEqual(
          (await bucket.list('a_')).map((e) => e.key),
          ['a_b'],
        );
        assert.deepEqual(
          (await bucket.list('a.')).map((e) => e.key),
          ['a.b'],
        );
      });
      it('returns the current revision of each entry', async () => {
        const ra = await bucket.put('a', 1);
        const rb = await bucket.put('b', 1);
        const rb2 = await bucket.put('b', 2);
        assert.deepEqual(
          (await bucket.list()).map((e) => [e.key, e.revision]),
          [
            ['a', ra],
            ['b', rb2],
          ],
        );
        assert.ok(rb2 > rb);
      });
    });

    describe('revisions, keys, values, buckets', () => {
      it('revisions strictly increase with every write to the bucket, across keys and deletes', async () => {
        const revs: number[] = [];
        revs.push(await bucket.create('a', 1));
        revs.push(await bucket.put('b', 1));
        revs.push(await bucket.update('a', 2, revs[0]!));
        await bucket.delete('b');
        revs.push(await bucket.put('b', 2));
        revs.push(await bucket.put('c', 1));
        for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!, `revisions ${revs.join(', ')}`);
      });
      it('rejects invalid keys with NIMBUS_ERR_INVALID_REQUEST', async () => {
        for (const key of ['', 'a b', 'ä', 'a*', 'a>', '.a', 'a.', 'a..b', 'x'.repeat(256)]) {
          await assert.rejects(bucket.put(key, 1), invalid, `key ${JSON.stringify(key)}`);
          await assert.rejects(bucket.get(key), invalid, `key ${JSON.stringify(key)}`);
        }
        await bucket.put(`A-z_0=9/x.y/${'k'.repeat(200)}`, 1);
      });
      it('round-trips JSON values, and returns copies the caller may mutate', async () => {
        const value = { s: 'héllo ☃ "q"\n', n: -1.5, b: false, nil: null, list: [1, 'two', { three: 3 }], nested: {} };
        await bucket.put('v', value);
        const got = await bucket.get('v');
        assert.deepEqual(got?.value, value);
        (got!.value as { s: string }).s = 'mutated';
        assert.deepEqual((await bucket.get('v'))?.value, value);
        for (const scalar of [0, 'text', true, null, []]) {
          await bucket.put('s', scalar);
          assert.deepEqual((await bucket.get('s'))?.value, scalar);
        }
      });
      it('keeps buckets apart', async () => {
        const other = store.bucket<number>(freshName());
        await bucket.put('k', 1);
        await other.put('k', 2);
        assert.equal((await bucket.get('k'))?.value, 1);
        assert.deepEqual(
          (await other.list()).map((e) => e.value),
          [2],
        );
        await other.delete('k');
        assert.equal((await bucket.get('k'))?.value, 1);
      });
    });

    watchCases({ store: () => store, bucket: () => bucket, freshName, watchTimeoutMs });
  });
}
