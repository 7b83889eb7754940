import { createHash, randomUUID } from 'node:crypto';
import { reconnectDelayMs, sleep, superviseConnection } from './backoff.js';
import type { FireResult, Trigger, TriggerContext, TriggerEvent } from './types.js';

/**
 * Fires `event` and counts the outcome, resolving once its invocation ended (`succeeded`,
 * `failed`, or `dead` in the DLQ) — the moment a broker source may acknowledge the message.
 * An error before the invocation was even queued (the function is not deployed yet, the store
 * failed) is retried with backoff and shown as the trigger's `lastError`: the message stays
 * unacknowledged meanwhile, so nothing is lost. Resolves `undefined` when `signal` aborts (the
 * trigger stopped): do not acknowledge then, the broker redelivers.
 */
export async function fireUntilEnded(
  ctx: TriggerContext,
  event: TriggerEvent,
  signal: AbortSignal,
): Promise<FireResult | undefined> {
  for (let failures = 1; !signal.aborted; failures++) {
    try {
      const result = await ctx.fire(event, signal);
      ctx.counted(result);
      return result;
    } catch (err) {
      if (signal.aborted) return undefined;
      ctx.setHealthy(true, err);
      await sleep(ctx.clock, reconnectDelayMs(failures), signal);
    }
  }
  return undefined;
}

/** Ids for messages whose broker gives none: see `createRedeliveryIds`. */
export interface RedeliveryIds {
  /**
   * The event id for a message received on connection `generation`: a fresh one, or — when the
   * broker says it is a redelivery — the id the same message (same `key`) had on an earlier
   * connection that ended before it was acknowledged.
   */
  assign(generation: number, key: string, redelivered: boolean): string;
  /** The message with this id was acknowledged (or given up): forget it. */
  settled(id: string): void;
  /** Connection `generation` ended: its unacknowledged messages will come back as redeliveries. */
  lost(generation: number): void;
}

/**
 * AMQP and MQTT messages carry no id of their own unless the publisher sets one (`messageId`, an
 * MQTT 5 `ce-id` user property). A message that was being processed when the connection dropped
 * is redelivered on the next one, flagged (`redelivered` / `dup`): this remembers the id it had,
 * by a hash of its routing key and payload, so the redelivery joins the invocation already
 * queued instead of running the function again. Identical payloads are interchangeable, so
 * matching them one to one is exact. Only a restart of Nimbus itself forgets (at least once).
 */
export function createRedeliveryIds(limit = 10_000): RedeliveryIds {
  const inflight = new Map<string, { generation: number; key: string }>();
  const orphans = new Map<string, string[]>();
  let orphaned = 0;
  return {
    assign(generation, key, redelivered) {
      const hash = createHash('sha256').update(key).digest('base64url');
      const list = redelivered ? orphans.get(hash) : undefined;
      const reused = list?.shift();
      if (list?.length === 0) orphans.delete(hash);
      if (reused !== undefined) orphaned--;
      const id = reused ?? randomUUID();
      inflight.set(id, { generation, key: hash });
      return id;
    },
    settled(id) {
      inflight.delete(id);
    },
    lost(generation) {
      for (const [id, entry] of inflight) {
        if (entry.generation !== generation) continue;
        inflight.delete(id);
        if (orphaned >= limit) continue; // bounded: beyond it a redelivery may run twice
        const list = orphans.get(entry.key) ?? [];
        list.push(id);
        orphans.set(entry.key, list);
        orphaned++;
      }
    },
  };
}

/** `scheme://host:port/…` without the user and password, for CloudEvents `source` and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/**
 * The start / stop of a broker trigger: `session` (connect, consume until the connection ends) runs
 * under superviseConnection — reconnects with backoff, unhealthy with the error meanwhile — and
 * `stop` aborts `stop`, closes what `close` closes (so a session waiting on its connection ends),
 * then waits for the loop.
 */
export function supervisedTrigger(
  ctx: TriggerContext,
  where: string,
  stop: AbortController,
  session: () => Promise<void>,
  close: () => Promise<void>,
): Trigger {
  let loop: Promise<void> | undefined;
  return {
    async start() {
      ctx.setHealthy(false, `connecting to ${where}`);
      loop = superviseConnection(ctx.clock, stop.signal, session, (err) => ctx.setHealthy(false, err));
    },
    async stop() {
      stop.abort();
      await close();
      await loop;
    },
  };
}
