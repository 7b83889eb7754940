import { connect, type NatsConnection, headers as natsHeaders } from 'nats';
import type { NatsPublish } from './destinations.js';

/**
 * The node's NATS connection for `nats:` destinations, opened on first use (a node that never
 * publishes never connects) and reconnecting forever; a publish while NATS is down throws, so the
 * delivery job is retried with back-off like any failed delivery.
 */
export function createNatsPublisher(url: string): { publish: NatsPublish; close(): Promise<void> } {
  let connection: Promise<NatsConnection> | undefined;
  const open = () => {
    connection ??= connect({
      servers: url,
      reconnect: true,
      maxReconnectAttempts: -1,
      name: 'nimbus-destinations',
    }).catch((err) => {
      connection = undefined;
      throw err;
    });
    return connection;
  };
  return {
    async publish(subject, payload, headers) {
      const nc = await open();
      const h = natsHeaders();
      for (const [key, value] of Object.entries(headers)) h.set(key, value);
      nc.publish(subject, payload, { headers: h });
      // Flush so a delivery counts as done only once the server has the message.
      await nc.flush();
    },
    async close() {
      const nc = await connection?.catch(() => undefined);
      await nc?.drain().catch(() => {});
    },
  };
}
