import { randomUUID } from 'node:crypto';
import { AckPolicy, connect, type Msg, type NatsConnection } from 'nats';
import { NimbusError } from '../core/errors.js';
import { superviseConnection } from './backoff.js';
import type { Trigger, TriggerContext, TriggerFactory } from './types.js';

interface NatsConfig {
  url: string;
  subject: string;
  /** Core NATS: share the subject's messages with other subscribers of this queue group. */
  queueGroup?: string;
  /** JetStream: consume from this stream with a durable consumer (ack after the function ends). */
  stream?: string;
  /** Durable consumer name; default `nimbus-TRIGGERID`. */
  consumer?: string;
}

/**
 * `nats`: core subscriptions (at most once, as core NATS is; a request gets the function's
 * answer as its reply once the invocation ends) or a JetStream durable consumer (at least once:
 * a message is acked only after its invocation ended — succeeded, or dead in the DLQ — so a node
 * that dies first gets it redelivered, and the event id `STREAM:SEQ` keeps it from running twice).
 */
export const natsTrigger: TriggerFactory = {
  type: 'nats',
  validate(config) {
    const bad = (why: string) => new NimbusError('NIMBUS_ERR_INVALID_REQUEST', why);
    const allowed = ['url', 'subject', 'queueGroup', 'stream', 'consumer'];
    for (const key of Object.keys(config))
      if (!allowed.includes(key)) throw bad(`config: unknown field ${key} (nats takes ${allowed.join(', ')})`);
    for (const key of allowed)
      if (config[key] !== undefined && typeof config[key] !== 'string') throw bad(`config.${key}: expected a string`);
    if (!config.subject) throw bad('config.subject: required (e.g. "orders.created")');
    return { url: 'nats://127.0.0.1:4222', ...config };
  },
  create(ctx) {
    return createNatsTrigger(ctx, ctx.spec.config as unknown as NatsConfig);
  },
};

function createNatsTrigger(ctx: TriggerContext, config: NatsConfig): Trigger {
  const stop = new AbortController();
  let nc: NatsConnection | undefined;
  let loop: Promise<void> | undefined;
  // JetStream's consume() keeps its own heartbeat timers: stop it, or the process never exits.
  let stopConsuming = () => {};
  const source = `${config.url.replace(/\/$/, '')}/${config.subject}`;

  const run = async (id: string, m: Msg) => {
    const result = await ctx.fire(
      {
        id,
        source,
        type: 'io.nimbus.nats.message',
        subject: m.subject,
        data: m.data,
        contentType: m.headers?.get('content-type') || undefined,
      },
      stop.signal,
    );
    ctx.counted(result);
    return result;
  };

  async function session(): Promise<void> {
    const conn = await connect({
      servers: config.url,
      name: `nimbus-trigger-${ctx.spec.id}`,
      maxReconnectAttempts: -1,
    });
    nc = conn;
    try {
      await consumeUntilClosed(conn);
    } finally {
      // A session that failed half-way (the stream is gone…) must not leave its socket open: the
      // next attempt opens another, and a leaked one holds the process at exit.
      if (!conn.isClosed()) await conn.close().catch(() => {});
    }
  }

  async function consumeUntilClosed(conn: NatsConnection): Promise<void> {
    // stop() may have run while we were connecting: it could not close this connection then.
    if (stop.signal.aborted) return;
    void (async () => {
      for await (const s of conn.status()) {
        if (s.type === 'disconnect') ctx.setHealthy(false, `disconnected from ${config.url}`);
        if (s.type === 'reconnect') ctx.setHealthy(true);
      }
    })();
    if (config.stream) {
      await consumeStream(conn);
      ctx.setHealthy(true);
    } else {
      const sub = conn.subscribe(config.subject, { queue: config.queueGroup });
      void (async () => {
        for await (const m of sub) {
          const id = m.headers?.get('Nats-Msg-Id') || randomUUID();
          run(id, m).then(
            (result) => m.reply && m.respond(JSON.stringify({ result })),
            (err) => {
              ctx.counted('failed');
              ctx.setHealthy(true, err);
            },
          );
        }
      })();
      // Healthy once the server has the subscription: a message published before that is not ours.
      await conn.flush();
      ctx.setHealthy(true);
    }
    const err = await conn.closed();
    if (err && !stop.signal.aborted) throw err;
  }

  async function consumeStream(conn: NatsConnection): Promise<void> {
    const stream = config.stream!;
    const durable = config.consumer ?? `nimbus-${ctx.spec.id}`;
    const jsm = await conn.jetstreamManager();
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      filter_subject: config.subject,
      // Longer than most invocations; a redelivery before the end only waits on the same invocation.
      ack_wait: 5 * 60 * 1e9,
    });
    const consumer = await conn.jetstream().consumers.get(stream, durable);
    const messages = await consumer.consume({ max_messages: 64 });
    stopConsuming = () => void messages.stop();
    void (async () => {
      for await (const m of messages) {
        const id = `${stream}:${m.seq}`;
        run(id, m as unknown as Msg).then(
          () => m.ack(),
          (err) => {
            // The invocation could not even be queued (function missing): let JetStream redeliver later.
            ctx.setHealthy(true, err);
            m.nak(5000);
          },
        );
      }
    })();
  }

  return {
    async start() {
      ctx.setHealthy(false, `connecting to ${config.url}`);
      loop = superviseConnection(ctx.clock, stop.signal, session, (err) => ctx.setHealthy(false, err));
    },
    async stop() {
      stop.abort();
      stopConsuming();
      await nc?.close().catch(() => {});
      await loop;
    },
  };
}
