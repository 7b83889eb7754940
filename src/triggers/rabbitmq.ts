import { setMaxListeners } from 'node:events';
import { type ConsumeMessage, connect } from 'amqplib';
import { createRedeliveryIds, fireUntilEnded, redactUrl, supervisedTrigger } from './delivery.js';
import type { Trigger, TriggerContext, TriggerFactory } from './types.js';
import { checkConfig } from './validate.js';

interface RabbitConfig {
  url: string;
  queue: string;
  /** Unacknowledged messages this trigger holds at once (basic.qos). */
  prefetch: number;
  /** Declare the queue (durable) if it does not exist; false: it must exist. */
  declare: boolean;
}

/**
 * `rabbitmq`: consumes one AMQP 0-9-1 queue with manual acknowledgements and a prefetch window.
 * A message is acked only after its invocation ended — succeeded, rejected by the function
 * (4xx), or dead in the DLQ after its retries — so a node or connection that dies first leaves
 * it unacked and RabbitMQ redelivers it. `ce-id` is the message's `messageId` when the publisher
 * set one (then a redelivery never runs twice); otherwise a redelivery after a dropped connection
 * is matched to its first id by content (createRedeliveryIds).
 */
export const rabbitmqTrigger: TriggerFactory = {
  type: 'rabbitmq',
  validate(config) {
    return checkConfig(
      'rabbitmq',
      config,
      {
        url: { kind: 'string', schemes: ['amqp:', 'amqps:'] },
        queue: { kind: 'string', required: true, example: '"orders"' },
        prefetch: { kind: 'integer', min: 1, max: 1000 },
        declare: { kind: 'boolean' },
      },
      { url: 'amqp://guest:guest@127.0.0.1:5672', prefetch: 16, declare: true },
    );
  },
  create(ctx) {
    return createRabbitTrigger(ctx, ctx.spec.config as unknown as RabbitConfig);
  },
};

function createRabbitTrigger(ctx: TriggerContext, config: RabbitConfig): Trigger {
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per message in flight
  const ids = createRedeliveryIds();
  const where = redactUrl(config.url);
  const source = `${where}/${config.queue}`;
  let closeConnection = async () => {};
  let generation = 0;

  async function session(): Promise<void> {
    const conn = await connect(config.url, { clientProperties: { connection_name: `nimbus-trigger-${ctx.spec.id}` } });
    const gen = ++generation;
    closeConnection = async () => void (await conn.close().catch(() => {}));
    const closed = new Promise<Error | undefined>((resolve) => {
      // Without an 'error' listener a broker going away would be an uncaught exception.
      conn.on('error', () => {});
      conn.on('close', (err?: Error) => resolve(err));
    });
    try {
      if (stop.signal.aborted) return;
      const channel = await conn.createChannel();
      // A channel-level failure (the queue was deleted…) closes the connection too: start over.
      channel.on('error', () => {});
      channel.on('close', () => void conn.close().catch(() => {}));
      if (config.declare) await channel.assertQueue(config.queue, { durable: true });
      else await channel.checkQueue(config.queue);
      await channel.prefetch(config.prefetch);
      const handle = async (m: ConsumeMessage): Promise<void> => {
        const given = m.properties.messageId as string | undefined;
        const id = given
          ? `${config.queue}:${given}`
          : ids.assign(gen, `${m.fields.routingKey}\n${m.content.toString('base64')}`, m.fields.redelivered);
        const result = await fireUntilEnded(
          ctx,
          {
            id,
            source,
            type: 'io.nimbus.rabbitmq.message',
            subject: m.fields.routingKey || undefined,
            time: m.properties.timestamp ? new Date(Number(m.properties.timestamp) * 1000) : undefined,
            data: m.content,
            contentType: m.properties.contentType,
          },
          stop.signal,
        );
        if (result === undefined) return; // stopped: unacked, RabbitMQ redelivers
        try {
          channel.ack(m);
          ids.settled(id);
        } catch {
          // The channel closed meanwhile: RabbitMQ redelivers it, and its id is remembered.
        }
      };
      await channel.consume(
        config.queue,
        (m) => {
          // null: RabbitMQ cancelled the consumer (the queue was deleted): start over, with backoff.
          if (m === null) void conn.close().catch(() => {});
          else handle(m).catch((err) => ctx.setHealthy(true, err));
        },
        { noAck: false },
      );
      ctx.setHealthy(true);
      const err = await closed;
      if (!stop.signal.aborted) throw err ?? new Error(`connection to ${where} closed`);
    } finally {
      ids.lost(gen);
      await conn.close().catch(() => {});
    }
  }

  return supervisedTrigger(ctx, where, stop, session, () => closeConnection());
}
