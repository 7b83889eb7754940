import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { createClient } from 'redis';
import { NimbusError } from '../core/errors.js';
import { fireUntilEnded, redactUrl, supervisedTrigger } from './delivery.js';
import type { Trigger, TriggerContext, TriggerFactory } from './types.js';
import { checkConfig } from './validate.js';

interface RedisStreamsConfig {
  url: string;
  stream: string;
  /** Consumer group; created (with MKSTREAM) when missing. Default `nimbus-TRIGGERID`. */
  group?: string;
  /** This node's consumer name in the group; default `nimbus-HOSTNAME`, stable across restarts. */
  consumer?: string;
  /** Where a newly created group starts: `$` (new entries only) or `0` (the whole stream). */
  start: string;
  /** Entries in flight at once. */
  batch: number;
  /** Pending entries idle this long (their consumer died) are claimed by this one (XAUTOCLAIM). */
  claimIdleMs: number;
}

type Entry = { id: string; message: Record<string, string> };
type Client = ReturnType<typeof createClient>;

/**
 * `redis-streams`: a member of a Redis Streams consumer group. XREADGROUP delivers entries, each
 * XACKed only after its invocation ended (succeeded, rejected, or dead in the DLQ). Entries
 * delivered but never acked stay in the group's pending list: at every (re)connect this consumer
 * first re-reads its own (`XREADGROUP … 0`), and periodically claims those idle longer than
 * `claimIdleMs` from consumers that died (XAUTOCLAIM). `ce-id` is `STREAM:ENTRY-ID`, so an entry
 * read twice runs once. The body is the entry's `data` field (with `content-type` from its
 * `content-type` field) when it has one, else the entry's fields as a JSON object.
 */
export const redisStreamsTrigger: TriggerFactory = {
  type: 'redis-streams',
  validate(config) {
    const out = checkConfig(
      'redis-streams',
      config,
      {
        url: { kind: 'string', schemes: ['redis:', 'rediss:'] },
        stream: { kind: 'string', required: true, example: '"orders"' },
        group: { kind: 'string' },
        consumer: { kind: 'string' },
        start: { kind: 'string' },
        batch: { kind: 'integer', min: 1, max: 1000 },
        claimIdleMs: { kind: 'integer', min: 1000 },
      },
      { url: 'redis://127.0.0.1:6379', start: '$', batch: 16, claimIdleMs: 60_000 },
    );
    if (out.start !== '$' && out.start !== '0')
      throw new NimbusError(
        'NIMBUS_ERR_INVALID_REQUEST',
        `config.start: expected "$" or "0", got ${JSON.stringify(out.start)}`,
      );
    return out;
  },
  create(ctx) {
    return createRedisStreamsTrigger(ctx, ctx.spec.config as unknown as RedisStreamsConfig);
  },
};

function createRedisStreamsTrigger(ctx: TriggerContext, config: RedisStreamsConfig): Trigger {
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per message in flight
  const where = redactUrl(config.url);
  const group = config.group ?? `nimbus-${ctx.spec.id}`;
  const consumer = config.consumer ?? `nimbus-${hostname()}`;
  const source = `${where}/${config.stream}`;
  const inflight = new Set<string>();
  const clients = new Set<Client>();
  // The current session's command connection: an invocation that ends after its session did acks on the next.
  let acker: Client | undefined;
  // Resolves the reader's wait for a free slot.
  let freed = () => {};

  const open = async (): Promise<Client> => {
    // No reconnect of its own: superviseConnection starts a new session with backoff.
    const c = createClient({ url: config.url, socket: { reconnectStrategy: false, connectTimeout: 10_000 } });
    c.on('error', () => {}); // surfaces as the failing command, which ends the session
    clients.add(c);
    await c.connect();
    return c;
  };

  function deliver(entry: Entry): void {
    if (inflight.has(entry.id)) return; // already being processed (re-read from the pending list)
    inflight.add(entry.id);
    const { data, 'content-type': contentType } = entry.message;
    const body = data !== undefined ? Buffer.from(data) : Buffer.from(JSON.stringify(entry.message));
    void fireUntilEnded(
      ctx,
      {
        id: `${config.stream}:${entry.id}`,
        source,
        type: 'io.nimbus.redis.stream.entry',
        subject: entry.id,
        time: new Date(Number(entry.id.split('-')[0])),
        data: body,
        contentType: data !== undefined ? contentType : 'application/json',
      },
      stop.signal,
    )
      .then(async (result) => {
        // No connection, or a failed XACK, leaves it pending: re-read at the next session, run once.
        if (result !== undefined) await acker?.xAck(config.stream, group, entry.id).catch(() => {});
      })
      .catch((err) => ctx.setHealthy(true, err))
      .finally(() => {
        inflight.delete(entry.id);
        freed();
      });
  }

  async function session(): Promise<void> {
    const commands = await open();
    const reader = await open().catch((err) => {
      commands.destroy();
      throw err;
    });
    try {
      await commands.xGroupCreate(config.stream, group, config.start, { MKSTREAM: true }).catch((err: Error) => {
        if (!/BUSYGROUP/.test(err.message)) throw err;
      });
      acker = commands;
      ctx.setHealthy(true);
      // First this consumer's own pending entries (delivered before a crash or a broker restart).
      for (let after = '0'; !stop.signal.aborted; ) {
        const mine = await read(reader, after, config.batch, undefined);
        if (mine.length === 0) break;
        for (const e of mine) deliver(e);
        after = mine[mine.length - 1]!.id;
      }
      let nextClaim = 0;
      while (!stop.signal.aborted) {
        if (ctx.clock.now() >= nextClaim) {
          await claim(commands);
          nextClaim = ctx.clock.now() + Math.max(1000, Math.floor(config.claimIdleMs / 2));
        }
        const free = config.batch - inflight.size;
        if (free <= 0) {
          await new Promise<void>((resolve) => {
            freed = resolve;
            stop.signal.addEventListener('abort', () => resolve(), { once: true });
          });
          continue;
        }
        for (const e of await read(reader, '>', free, 2000)) deliver(e);
      }
    } finally {
      if (acker === commands) acker = undefined;
      for (const c of [reader, commands]) {
        clients.delete(c);
        c.destroy();
      }
    }
  }

  async function read(c: Client, after: string, count: number, block: number | undefined): Promise<Entry[]> {
    const reply = (await c.xReadGroup(
      group,
      consumer,
      { key: config.stream, id: after },
      { COUNT: count, BLOCK: block },
    )) as { messages: (Entry | null)[] }[] | null;
    // A pending entry whose data was trimmed away reads as null: ack it, nothing is left to run.
    const entries = reply?.[0]?.messages ?? [];
    return entries.filter((e): e is Entry => e !== null && e.message !== null);
  }

  /** Takes over entries other consumers of the group left pending for longer than claimIdleMs. */
  async function claim(c: Client): Promise<void> {
    let start = '0-0';
    do {
      const r = (await c.xAutoClaim(config.stream, group, consumer, config.claimIdleMs, start, { COUNT: 100 })) as {
        nextId: string;
        messages: (Entry | null)[];
      };
      for (const e of r.messages) if (e?.message) deliver(e);
      start = r.nextId;
    } while (start !== '0-0' && !stop.signal.aborted);
  }

  return supervisedTrigger(ctx, where, stop, session, async () => {
    freed();
    for (const c of clients) c.destroy();
  });
}
