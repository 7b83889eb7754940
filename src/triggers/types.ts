/**
 * The Trigger contract: an event source (a schedule, a broker subscription…) that turns what it
 * receives into invocations of one function. A trigger owns its connection: it reconnects with
 * backoff when its broker is down (shown as `healthy: false` with the `lastError`), and never
 * throws out of `start` for a broker that is unreachable — the node must keep serving.
 */
import type { Clock } from '../core/clock.js';

/** A trigger as configured through the API (`triggers` bucket). */
export interface TriggerSpec {
  /** `[a-z0-9-]`, unique on the node. */
  id: string;
  /** Which source: `cron`, `nats`, `interval`, … (a key of the factory registry). */
  type: string;
  /** The function it invokes. */
  function: string;
  /** Source-specific settings, checked by the factory's `validate`. */
  config: Record<string, unknown>;
  createdAt: string;
}

export interface TriggerStatus {
  healthy: boolean;
  lastError?: string;
  /** Events whose invocation succeeded. */
  delivered: number;
  /** Events whose invocation ended failed or dead (they are in the function's DLQ when dead). */
  failed: number;
  lastEventAt?: string;
}

/** One event from a source, delivered to the function as a CloudEvent (HTTP binary mode). */
export interface TriggerEvent {
  /** Unique per source event (a broker's message id, a cron tick's time): the invocation id derives from it. */
  id: string;
  /** CloudEvents `source`, e.g. `nats://127.0.0.1:4222/orders.created`. */
  source: string;
  /** CloudEvents `type`, e.g. `io.nimbus.nats.message`. */
  type: string;
  subject?: string;
  /** When it happened (default: now). */
  time?: Date;
  data: Uint8Array;
  contentType?: string;
}

/** How an event ended: after `fire` resolves the source may acknowledge the message. */
export type FireResult = 'succeeded' | 'failed' | 'dead';

/** What a trigger gets from the node. */
export interface TriggerContext {
  spec: TriggerSpec;
  clock: Clock;
  /**
   * Queues the event as a durable async invocation (retries, DLQ) and resolves once it has ended.
   * Idempotent on `event.id`: a redelivered message does not run twice once it has run.
   */
  fire(event: TriggerEvent, signal?: AbortSignal): Promise<FireResult>;
  /** Health changes, shown in `status()` by the base class. */
  setHealthy(healthy: boolean, error?: unknown): void;
  counted(result: FireResult): void;
}

export interface Trigger {
  /** Starts receiving; resolves quickly even when the broker is down (it keeps retrying). */
  start(): Promise<void>;
  /** Stops receiving and closes connections. Idempotent. */
  stop(): Promise<void>;
  /**
   * Optional: the trigger was deleted (called after `stop`, never at shutdown) — release what the
   * broker keeps for it, e.g. an MQTT persistent session that would go on queueing messages.
   * Best effort: a broker that is down keeps it until it expires on its own.
   */
  remove?(): Promise<void>;
}

/** A kind of source: checks a spec's config, and makes the trigger. */
export interface TriggerFactory {
  type: string;
  /** Throws NIMBUS_ERR_INVALID_REQUEST naming the bad field; returns the config with defaults. */
  validate(config: Record<string, unknown>): Record<string, unknown>;
  create(ctx: TriggerContext): Trigger;
}
