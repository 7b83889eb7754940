import { connect, type KV, type KvEntry, KvWatchInclude, type NatsConnection, type QueuedIterator } from 'nats';
import { NimbusError } from '../../core/errors.js';
import { closeOnAbort, EventChannel } from '../event-channel.js';
import { assertValidBucketName, assertValidKey, encodeValue } from '../keys.js';
import type { Bucket, Entry, Store, WatchEvent, WatchOptions } from '../types.js';

export interface NatsStoreOptions {
  /** NATS server with JetStream, e.g. `nats://127.0.0.1:4222`. */
  url: string;
  /** Put before every bucket's name on the server (its KV bucket, stream `KV_PREFIXNAME`). Default `nimbus_`. */
  prefix?: string;
  /** KV bucket storage on the server. Default `file`. */
  storage?: 'file' | 'memory';
}

/** JetStream's "wrong last sequence" (a compare-and-swap that lost): the contract's CONFLICT. */
const WRONG_LAST_SEQUENCE = 10071;

/**
 * The Store on NATS JetStream KV, for nodes that share their registry: one KV bucket per Store
 * bucket, revisions are the bucket stream's sequence numbers (strictly increasing per bucket,
 * as the contract asks), create / update / conditional delete are JetStream's expected-last-
 * sequence writes, so compare-and-swap holds across nodes.
 *
 * Watches: the contract's `watch()` returns at once and must see every change after it returned,
 * but a JetStream consumer is made asynchronously. So each bucket runs ONE ordered watcher of its
 * own (set up before the bucket's first read or write resolves) and fans its changes out in
 * process; a `watch()` only registers a listener, synchronously. A listener ignores changes at
 * or below the newest revision this bucket had seen (written or watched) when it registered, so a
 * write that finished before `watch()` is not replayed to it.
 */
export async function createNatsStore(options: NatsStoreOptions): Promise<Store> {
  const nc = await connect({ servers: options.url, name: 'nimbus-store' });
  const prefix = options.prefix ?? 'nimbus_';
  const buckets = new Map<string, NatsBucket<unknown>>();
  return {
    bucket<T>(name: string): Bucket<T> {
      assertValidBucketName(name);
      let b = buckets.get(name);
      if (!b) {
        b = new NatsBucket(nc, `${prefix}${name}`, options.storage ?? 'file');
        buckets.set(name, b);
      }
      return b as Bucket<T>;
    },
    async close() {
      for (const b of buckets.values()) b.close();
      await nc.drain().catch(() => {});
    },
  };
}

interface Listener<T> {
  prefix: string;
  floor: number;
  channel: EventChannel<WatchEvent<T>>;
}

class NatsBucket<T> implements Bucket<T> {
  readonly #ready: Promise<KV>;
  readonly #listeners = new Set<Listener<T>>();
  #watcher: QueuedIterator<KvEntry> | undefined;
  // The newest revision this bucket has seen, from its own writes or from its watcher.
  #seen = 0;
  #closed = false;

  constructor(nc: NatsConnection, name: string, storage: 'file' | 'memory') {
    this.#ready = this.#open(nc, name, storage);
    // The error surfaces on every operation; open watches end, as they do when the connection closes.
    this.#ready.catch(() => this.close());
  }

  async #open(nc: NatsConnection, name: string, storage: 'file' | 'memory'): Promise<KV> {
    const kv = await nc.jetstream().views.kv(name, { history: 1, storage: storage as never });
    // Updates only: the changes after this point, which every write of this bucket comes after.
    const watcher = await kv.watch({ key: '>', include: KvWatchInclude.UpdatesOnly });
    this.#watcher = watcher;
    if (this.#closed) watcher.stop();
    void this.#fanOut(watcher);
    return kv;
  }

  async #fanOut(watcher: QueuedIterator<KvEntry>): Promise<void> {
    try {
      for await (const e of watcher) {
        if (e.revision > this.#seen) this.#seen = e.revision;
        const event: WatchEvent<T> =
          e.operation === 'PUT'
            ? { type: 'put', entry: { key: e.key, value: decode<T>(e), revision: e.revision } }
            : { type: 'delete', key: e.key, revision: e.revision };
        for (const l of this.#listeners)
          if (e.revision > l.floor && e.key.startsWith(l.prefix)) l.channel.push(cloneEvent(event));
      }
    } finally {
      // The connection closed: end the watches so their loops finish instead of hanging.
      for (const l of this.#listeners) l.channel.close();
    }
  }

  #wrote(revision: number): number {
    if (revision > this.#seen) this.#seen = revision;
    return revision;
  }

  async get(key: string): Promise<Entry<T> | undefined> {
    assertValidKey(key);
    const e = await (await this.#ready).get(key);
    if (e?.operation !== 'PUT') return undefined;
    return { key, value: decode<T>(e), revision: e.revision };
  }

  async list(prefix = ''): Promise<Entry<T>[]> {
    const kv = await this.#ready;
    const keys: string[] = [];
    for await (const k of await kv.keys()) if (k.startsWith(prefix)) keys.push(k);
    keys.sort();
    // A key deleted between keys() and get() is left out.
    const entries = await Promise.all(keys.map((k) => this.get(k)));
    return entries.filter((e): e is Entry<T> => e !== undefined);
  }

  watch(options: WatchOptions = {}): AsyncIterable<WatchEvent<T>> {
    let unlinkAbort = () => {};
    const listener: Listener<T> = {
      prefix: options.prefix ?? '',
      floor: this.#seen,
      channel: new EventChannel<WatchEvent<T>>(() => {
        this.#listeners.delete(listener);
        unlinkAbort();
      }),
    };
    if (this.#closed) listener.channel.close();
    else this.#listeners.add(listener);
    unlinkAbort = closeOnAbort(listener.channel, options.signal);
    return listener.channel;
  }

  async create(key: string, value: T): Promise<number> {
    const data = encode(key, value);
    const kv = await this.#ready;
    return this.#wrote(await cas(() => kv.create(key, data), `Key ${key} already exists`));
  }

  async update(key: string, value: T, expectedRevision: number): Promise<number> {
    const data = encode(key, value);
    const kv = await this.#ready;
    // JetStream would also accept the revision of the key's delete marker: a deleted key is missing here.
    const current = await kv.get(key);
    if (current?.operation !== 'PUT') throw conflict(`Key ${key} does not exist`);
    return this.#wrote(
      await cas(
        () => kv.update(key, data, expectedRevision),
        `Key ${key} is not at revision ${expectedRevision} (someone else wrote it)`,
      ),
    );
  }

  async put(key: string, value: T): Promise<number> {
    const data = encode(key, value);
    return this.#wrote(await (await this.#ready).put(key, data));
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    assertValidKey(key);
    const kv = await this.#ready;
    const current = await kv.get(key);
    const exists = current !== null && current.operation === 'PUT';
    if (expectedRevision === undefined) {
      // Deleting a missing key changes nothing and tells no watcher (as the SQLite backend).
      if (exists) await kv.delete(key);
      return;
    }
    if (!exists) throw conflict(`Key ${key} does not exist`);
    await cas(
      () => kv.delete(key, { previousSeq: expectedRevision }),
      `Key ${key} is not at revision ${expectedRevision} (someone else wrote it)`,
    );
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.stop();
    for (const l of this.#listeners) l.channel.close();
  }
}

function encode(key: string, value: unknown): Uint8Array {
  assertValidKey(key);
  return new TextEncoder().encode(encodeValue(key, value));
}

function decode<T>(e: KvEntry): T {
  return JSON.parse(new TextDecoder().decode(e.value)) as T;
}

/** Each watcher gets its own copy: a value one mutates is not another's. */
function cloneEvent<T>(event: WatchEvent<T>): WatchEvent<T> {
  return event.type === 'put'
    ? { type: 'put', entry: { ...event.entry, value: structuredClone(event.entry.value) } }
    : event;
}

function conflict(message: string): NimbusError {
  return new NimbusError('NIMBUS_ERR_CONFLICT', message);
}

/** Runs a JetStream expected-sequence write; a lost race becomes NIMBUS_ERR_CONFLICT. */
async function cas<R>(write: () => Promise<R>, message: string): Promise<R> {
  try {
    return await write();
  } catch (err) {
    const api = (err as { api_error?: { err_code?: number } }).api_error;
    if (api?.err_code === WRONG_LAST_SEQUENCE || /wrong last sequence/i.test((err as Error).message))
      throw conflict(message);
    throw err;
  }
}
