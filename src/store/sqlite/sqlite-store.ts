import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { NimbusError } from '../../core/errors.js';
import { closeOnAbort, EventChannel } from '../event-channel.js';
import { assertValidBucketName, assertValidKey, encodeValue } from '../keys.js';
import type { Bucket, Entry, Store, WatchEvent, WatchOptions } from '../types.js';

export interface SqliteStoreOptions {
  /** Database file (its directory is created), or `:memory:` for tests. */
  path: string;
}

interface Row {
  key: string;
  value: string;
  revision: number;
}

/** A committed change, published after the transaction so watchers only see durable writes. */
type Change = { bucket: string; type: 'put'; key: string; value: string; revision: number } | DeleteChange;
type DeleteChange = { bucket: string; type: 'delete'; key: string; revision: number };

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kv (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
  INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0);
`;

/**
 * The embedded Store: one SQLite database (WAL mode), one table for every bucket, one revision
 * counter for the whole store (so revisions strictly increase within each bucket, and survive a
 * restart because the counter is persisted, not derived from rows that deletes remove).
 *
 * Watches are fed by an in-process emitter from this object's own writes: a second process writing
 * the same file is not seen. A single node owns its data directory; clusters use JetStream KV.
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);

  const stmt = {
    get: db.prepare<[string, string], Row>('SELECT key, value, revision FROM kv WHERE bucket = ? AND key = ?'),
    // substr rather than LIKE: keys may contain `_`, which LIKE treats as a wildcard.
    listAll: db.prepare<[string, number, string], Row>(
      'SELECT key, value, revision FROM kv WHERE bucket = ? AND substr(key, 1, ?) = ? ORDER BY key',
    ),
    next: db.prepare<[], { value: number }>(
      "UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value",
    ),
    upsert: db.prepare<[string, string, string, number]>(
      'INSERT INTO kv (bucket, key, value, revision) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, revision = excluded.revision',
    ),
    remove: db.prepare<[string, string]>('DELETE FROM kv WHERE bucket = ? AND key = ?'),
  };
  const events = new EventEmitter();
  // Each watcher is one listener; many watchers are normal, not a leak.
  events.setMaxListeners(0);
  const channels = new Set<{ close(): void }>();
  let closed = false;

  const checkOpen = () => {
    if (closed) throw new NimbusError('NIMBUS_ERR_INTERNAL', 'Internal error: the store is closed');
  };
  const conflict = (bucket: string, key: string, why: string) =>
    new NimbusError('NIMBUS_ERR_CONFLICT', `Conflict on ${bucket}/${key}: ${why}`, { details: { bucket, key } });

  // All writes run in an IMMEDIATE transaction: the read of the current revision and the write
  // are one atomic step, also against other connections to the same file.
  const write = db.transaction(
    (bucket: string, key: string, json: string | undefined, expect: 'absent' | number | 'any'): Change | undefined => {
      const current = stmt.get.get(bucket, key);
      if (expect === 'absent' && current) throw conflict(bucket, key, 'key already exists');
      if (typeof expect === 'number') {
        if (!current) throw conflict(bucket, key, `key does not exist (expected revision ${expect})`);
        if (current.revision !== expect) {
          throw conflict(bucket, key, `revision is ${current.revision}, expected ${expect}`);
        }
      }
      if (json === undefined && !current) return undefined; // idempotent delete: nothing changes
      const revision = stmt.next.get()!.value;
      if (json === undefined) {
        stmt.remove.run(bucket, key);
        return { bucket, type: 'delete', key, revision };
      }
      stmt.upsert.run(bucket, key, json, revision);
      return { bucket, type: 'put', key, value: json, revision };
    },
  );
  const commit = (...args: Parameters<typeof write>): Change | undefined => {
    checkOpen();
    const change = write.immediate(...args);
    if (change) events.emit('change', change);
    return change;
  };

  function bucket<T>(name: string): Bucket<T> {
    assertValidBucketName(name);
    const toEntry = (row: Row): Entry<T> => ({ key: row.key, value: JSON.parse(row.value), revision: row.revision });
    return {
      async get(key) {
        assertValidKey(key);
        checkOpen();
        const row = stmt.get.get(name, key);
        return row && toEntry(row);
      },
      async list(prefix = '') {
        checkOpen();
        return stmt.listAll.all(name, prefix.length, prefix).map(toEntry);
      },
      watch(opts: WatchOptions = {}) {
        checkOpen();
        const prefix = opts.prefix ?? '';
        let unlinkAbort = () => {};
        // Subscribe now, not on the first next(): writes after watch() returns must be seen.
        const channel = new EventChannel<WatchEvent<T>>(() => {
          events.off('change', listener);
          unlinkAbort();
          channels.delete(channel);
        });
        const listener = (c: Change) => {
          if (c.bucket !== name || !c.key.startsWith(prefix)) return;
          channel.push(
            c.type === 'put'
              ? { type: 'put', entry: { key: c.key, value: JSON.parse(c.value), revision: c.revision } }
              : { type: 'delete', key: c.key, revision: c.revision },
          );
        };
        events.on('change', listener);
        channels.add(channel);
        unlinkAbort = closeOnAbort(channel, opts.signal);
        return channel;
      },
      async create(key, value) {
        assertValidKey(key);
        return commit(name, key, encodeValue(key, value), 'absent')!.revision;
      },
      async update(key, value, expectedRevision) {
        assertValidKey(key);
        return commit(name, key, encodeValue(key, value), expectedRevision)!.revision;
      },
      async put(key, value) {
        assertValidKey(key);
        return commit(name, key, encodeValue(key, value), 'any')!.revision;
      },
      async delete(key, expectedRevision) {
        assertValidKey(key);
        commit(name, key, undefined, expectedRevision ?? 'any');
      },
    };
  }

  return {
    bucket,
    async close() {
      if (closed) return;
      closed = true;
      // End every open watch so `for await` loops finish instead of hanging on a dead store.
      for (const channel of [...channels]) channel.close();
      db.close();
    },
  };
}
