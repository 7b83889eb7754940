import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runStoreConformance } from '../conformance.js';
import { createSqliteStore } from './sqlite-store.js';

runStoreConformance('sqlite (:memory:)', () => createSqliteStore({ path: ':memory:' }));

const dir = mkdtempSync(join(tmpdir(), 'nimbus-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
runStoreConformance('sqlite (file)', () => createSqliteStore({ path: join(dir, `db${++n}`, 'nimbus.db') }));

describe('sqlite store', () => {
  it('keeps data and the revision counter across a reopen of the same file', async () => {
    const path = join(dir, 'reopen.db');
    const first = createSqliteStore({ path });
    const r1 = await first.bucket('fns').put('a', { v: 1 });
    const r2 = await first.bucket('fns').put('b', 2);
    await first.bucket('fns').delete('b');
    await first.close();

    const second = createSqliteStore({ path });
    assert.deepEqual(await second.bucket('fns').get('a'), { key: 'a', value: { v: 1 }, revision: r1 });
    // The deleted key held the highest revision: the next one must still be above it.
    assert.ok((await second.bucket('fns').put('c', 3)) > r2);
    await second.close();
  });

  it('uses WAL journaling for a file database', async () => {
    const path = join(dir, 'wal.db');
    const store = createSqliteStore({ path });
    await store.bucket('b').put('k', 1);
    await store.close();
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();
  });

  it('ends open watches when the store closes', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const events = store.bucket('b').watch();
    const loop = (async () => {
      const seen = [];
      for await (const e of events) seen.push(e);
      return seen;
    })();
    await store.bucket('b').put('k', 1);
    await store.close();
    assert.ok((await loop).length <= 1);
  });

  it('rejects invalid bucket names', () => {
    const store = createSqliteStore({ path: ':memory:' });
    assert.throws(() => store.bucket('a/b'), { code: 'NIMBUS_ERR_INVALID_REQUEST' });
    assert.throws(() => store.bucket(''), { code: 'NIMBUS_ERR_INVALID_REQUEST' });
    return store.close();
  });

  it('rejects values that are not JSON data', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const b = store.bucket('b');
    await assert.rejects(b.put('k', undefined), { code: 'NIMBUS_ERR_INVALID_REQUEST' });
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    await assert.rejects(b.put('k', loop), { code: 'NIMBUS_ERR_INVALID_REQUEST' });
    await assert.rejects(b.put('k', 10n), { code: 'NIMBUS_ERR_INVALID_REQUEST' });
    await store.close();
  });
});
