import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Bucket, Store, WatchEvent } from './types.js';

/** What the watch cases need from the suite: the current test's store and bucket. */
export interface ConformanceContext {
  store(): Store;
  bucket(): Bucket<unknown>;
  freshName(): string;
  watchTimeoutMs: number;
}

/** The next `count` events of a watch, failing (not hanging) if they do not come in time. */
async function takeEvents<T>(
  events: AsyncIterable<WatchEvent<T>>,
  count: number,
  timeoutMs: number,
): Promise<WatchEvent<T>[]> {
  const got: WatchEvent<T>[] = [];
  if (count === 0) return got;
  const iterator = events[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`watch gave ${got.length} of ${count} events`)), timeoutMs);
  });
  try {
    while (got.length < count) {
      const r = await Promise.race([iterator.next(), timeout]);
      if (r.done) throw new Error(`watch ended after ${got.length} of ${count} events`);
      got.push(r.value);
    }
    return got;
  } finally {
    clearTimeout(timer);
  }
}

const summary = (events: WatchEvent<unknown>[]) =>
  events.map((e) => (e.type === 'put' ? `put ${e.entry.key}@${e.entry.revision}` : `del ${e.key}@${e.revision}`));

/** The watch half of runStoreConformance (conformance.ts), registered inside its describe. */
export function watchCases(ctx: ConformanceContext): void {
  const take = <T>(events: AsyncIterable<WatchEvent<T>>, count: number) =>
    takeEvents(events, count, ctx.watchTimeoutMs);
  describe('watch', () => {
    it('sees puts and deletes made after it returned, in order, with their revisions', async () => {
      await ctx.bucket().put('before', 0);
      const ac = new AbortController();
      const events = ctx.bucket().watch({ signal: ac.signal });
      // Written before the first next(): must still be seen.
      const r1 = await ctx.bucket().put('a', 1);
      const r2 = await ctx.bucket().update('a', 2, r1);
      await ctx.bucket().delete('a');
      const r4 = await ctx.bucket().create('b', { x: true });
      const got = await take(events, 4);
      ac.abort();
      assert.equal(got[0]?.type === 'put' && got[0].entry.value, 1);
      assert.deepEqual((got[3] as { entry: unknown }).entry, { key: 'b', value: { x: true }, revision: r4 });
      assert.deepEqual(summary(got).slice(0, 2), [`put a@${r1}`, `put a@${r2}`]);
      assert.equal(got[2]?.type, 'delete');
      assert.equal((got[2] as { key: string }).key, 'a');
      const revs = got.map((e) => (e.type === 'put' ? e.entry.revision : e.revision));
      for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!);
    });
    it('with a prefix sees only keys under it', async () => {
      const ac = new AbortController();
      const events = ctx.bucket().watch({ prefix: 'fn/', signal: ac.signal });
      await ctx.bucket().put('rev/1', 1);
      await ctx.bucket().put('fn/a', 1);
      await ctx.bucket().put('fnx', 1);
      await ctx.bucket().delete('rev/1');
      await ctx.bucket().delete('fn/a');
      await ctx.bucket().put('fn/b', 2);
      const got = await take(events, 3);
      ac.abort();
      assert.deepEqual(
        got.map((e) => (e.type === 'put' ? `put ${e.entry.key}` : `del ${e.key}`)),
        ['put fn/a', 'del fn/a', 'put fn/b'],
      );
    });
    it('does not see other buckets', async () => {
      const ac = new AbortController();
      const events = ctx.bucket().watch({ signal: ac.signal });
      await ctx.store().bucket(ctx.freshName()).put('k', 'other');
      await ctx.bucket().put('k', 'mine');
      const got = await take(events, 1);
      ac.abort();
      assert.equal(got[0]?.type === 'put' && got[0].entry.value, 'mine');
    });
    it('gives every watcher every event', async () => {
      const ac = new AbortController();
      const one = ctx.bucket().watch({ signal: ac.signal });
      const two = ctx.bucket().watch({ signal: ac.signal });
      await ctx.bucket().put('a', 1);
      await ctx.bucket().put('b', 2);
      const [g1, g2] = await Promise.all([take(one, 2), take(two, 2)]);
      ac.abort();
      assert.deepEqual(summary(g1), summary(g2));
    });
    it('ends its iterator when the signal aborts', async () => {
      const ac = new AbortController();
      const events = ctx.bucket().watch({ signal: ac.signal });
      const seen: string[] = [];
      const loop = (async () => {
        for await (const e of events) {
          seen.push(e.type);
          if (seen.length === 1) ac.abort();
        }
      })();
      await ctx.bucket().put('a', 1);
      await loop;
      assert.deepEqual(seen, ['put']);
      await ctx.bucket().put('b', 2); // writes after the end are not an error
    });
    it('ends at once with an already-aborted signal', async () => {
      const events = ctx.bucket().watch({ signal: AbortSignal.abort() });
      await ctx.bucket().put('a', 1);
      const seen = [];
      for await (const e of events) seen.push(e);
      assert.deepEqual(seen, []);
    });
    it('stops when the loop breaks', async () => {
      const events = ctx.bucket().watch();
      await ctx.bucket().put('a', 1);
      await ctx.bucket().put('b', 2);
      for await (const e of events) {
        assert.equal(e.type, 'put');
        break;
      }
      await ctx.bucket().put('c', 3);
    });
  });
}
