import { setMaxListeners } from 'node:events';
import { connect, connectAsync, type IPublishPacket, type MqttClient } from 'mqtt';
import { NimbusError } from '../core/errors.js';
import { createRedeliveryIds, fireUntilEnded, redactUrl, supervisedTrigger } from './delivery.js';
import type { Trigger, TriggerContext, TriggerFactory } from './types.js';
import { checkConfig } from './validate.js';

interface MqttConfig {
  url: string;
  /** A topic filter (`+` and `#` wildcards allowed). */
  topic: string;
  /** The persistent session's client id; default `nimbus-TRIGGERID`. */
  clientId?: string;
  username?: string;
  password?: string;
  /** Seconds the broker keeps the session (and queues QoS 1 messages) while Nimbus is away. */
  sessionExpiry: number;
  /** Seconds between keep-alive pings. */
  keepalive: number;
}

/**
 * `mqtt`: an MQTT 5 subscription at QoS 1 in a persistent session (`clean: false` with a session
 * expiry), so the broker queues messages published while Nimbus is down and hands them over on
 * reconnect. The PUBACK is sent only after the message's invocation ended (succeeded, rejected,
 * or dead in the DLQ): until then the broker keeps it in flight and redelivers it on the next
 * connection. mqtt.js handles a session's incoming packets one after the other, so messages of
 * one trigger are processed in order, one at a time. `ce-id` is the MQTT 5 user property `ce-id`
 * when the publisher sets one; otherwise a redelivery (`dup`) is matched to its first id by content.
 */
export const mqttTrigger: TriggerFactory = {
  type: 'mqtt',
  validate(config) {
    const out = checkConfig(
      'mqtt',
      config,
      {
        url: { kind: 'string', schemes: ['mqtt:', 'mqtts:', 'ws:', 'wss:'] },
        topic: { kind: 'string', required: true, example: '"sensors/+/temperature"' },
        clientId: { kind: 'string' },
        username: { kind: 'string' },
        password: { kind: 'string' },
        sessionExpiry: { kind: 'integer', min: 1, max: 0xffffffff },
        keepalive: { kind: 'integer', min: 5, max: 65535 },
      },
      { url: 'mqtt://127.0.0.1:1883', sessionExpiry: 7 * 24 * 3600, keepalive: 60 },
    );
    // The broker would refuse these at subscribe time, over and over: say so now.
    const levels = (out.topic as string).split('/');
    const badLevel = levels.findIndex(
      (l, i) => (l.includes('#') && (l !== '#' || i !== levels.length - 1)) || (l.includes('+') && l !== '+'),
    );
    if (badLevel >= 0)
      throw new NimbusError(
        'NIMBUS_ERR_INVALID_REQUEST',
        `config.topic: "+" must be a whole level and "#" the whole last level, got ${JSON.stringify(out.topic)}`,
      );
    return out;
  },
  create(ctx) {
    return createMqttTrigger(ctx, ctx.spec.config as unknown as MqttConfig);
  },
};

function createMqttTrigger(ctx: TriggerContext, config: MqttConfig): Trigger {
  const stop = new AbortController();
  setMaxListeners(0, stop.signal); // one listener per message in flight
  const ids = createRedeliveryIds();
  const where = redactUrl(config.url);
  let client: MqttClient | undefined;
  let generation = 0;

  async function handle(gen: number, topic: string, payload: Buffer, packet: IPublishPacket): Promise<boolean> {
    const props = packet.properties;
    const given = props?.userProperties?.['ce-id'];
    const id =
      typeof given === 'string'
        ? `${topic}:${given}`
        : ids.assign(gen, `${topic}\n${payload.toString('base64')}`, packet.dup);
    const result = await fireUntilEnded(
      ctx,
      {
        id,
        source: `${where}/${config.topic}`,
        type: 'io.nimbus.mqtt.message',
        subject: topic,
        data: payload,
        contentType: props?.contentType,
      },
      stop.signal,
    );
    if (result === undefined) return false;
    ids.settled(id);
    return true;
  }

  async function session(): Promise<void> {
    const gen = ++generation;
    const c = connect(config.url, {
      clientId: config.clientId ?? `nimbus-${ctx.spec.id}`,
      username: config.username,
      password: config.password,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: config.sessionExpiry },
      keepalive: config.keepalive,
      // superviseConnection reconnects with backoff and a fresh client; a PUBACK must never go out
      // on a later connection than the one that received the message.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      // Called for each QoS 1 message in turn; `done` sends the PUBACK, so it waits for the invocation.
      customHandleAcks: (topic, payload, packet, done) => {
        handle(gen, topic, payload, packet).then(
          (ended) => ended && c.connected && done(0),
          () => {},
        );
      },
    });
    client = c;
    try {
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
        c.once('close', () => reject(new Error(`cannot connect to ${where}`)));
      });
      c.on('error', () => {}); // reported through 'close' and the session's end
      // A message published at QoS 0 arrives at QoS 0 (nothing to acknowledge): customHandleAcks
      // never sees it, 'message' does (QoS 1 ones come there too, after their PUBACK: skipped).
      c.on('message', (topic, payload, packet) => {
        if (packet.qos === 0) void handle(gen, topic, payload, packet);
      });
      if (stop.signal.aborted) return;
      const granted = await c.subscribeAsync(config.topic, { qos: 1 });
      const code = granted[0]?.qos ?? 128;
      if (code >= 128) throw new Error(`subscription to ${config.topic} refused (reason ${code})`);
      ctx.setHealthy(true);
      await new Promise<void>((resolve) => {
        if (c.disconnected || !c.connected) return resolve();
        c.once('close', () => resolve());
      });
      if (!stop.signal.aborted) throw new Error(`connection to ${where} closed`);
    } finally {
      ids.lost(gen);
      c.removeAllListeners('connect');
      c.on('error', () => {});
      await c.endAsync(true).catch(() => {});
    }
  }

  // A force close keeps the persistent session (and its queued messages) on the broker.
  const trigger = supervisedTrigger(ctx, where, stop, session, async () => {
    await client?.endAsync(true).catch(() => {});
  });
  return {
    ...trigger,
    // Deleted: a clean start with no expiry ends the session (and drops what it queued).
    async remove() {
      const c = await connectAsync(config.url, {
        clientId: config.clientId ?? `nimbus-${ctx.spec.id}`,
        username: config.username,
        password: config.password,
        protocolVersion: 5,
        clean: true,
        properties: { sessionExpiryInterval: 0 },
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
      await c.endAsync();
    },
  };
}
