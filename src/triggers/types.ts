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
  /**
   * Who owns it: `manifest` — declared in the function's `triggers:`, created, changed and deleted
   * by its deploys; `api` (or unset, for records made before origins) — only the API removes it.
   */
  origin?: 'api' | 'manifest';
  /** The manifest entry's `name`, when it has one (manifest triggers only). */
  name?: string;
  /** Last changed by a deploy (manifest triggers only). */
  updatedAt?: string;
}

/**
 * One entry of a manifest's `triggers:` list, shape-checked by the build (src/build/triggers-field.ts);
 * its `config` is checked by the source's factory when the deploy plans it.
 */
export interface DeclaredTrigger {
  name?: string;
  type: string;
  /** Every field of the entry but `name` and `type`. */
  config: Record<string, unknown>;
  /** Position in the list, for messages (`triggers[1].topic`). */
  index: number;
  /** The manifest file (or `config overrides`). */
  label: string;
  /** The 1-based line of the entry, or of one of its fields, when known. */
  line(field?: string): number | undefined;
}

/** A deploy's triggers, checked and given ids: what `reconcile` makes true. */
export interface TriggerPlan {
  function: string;
  specs: Omit<TriggerSpec, 'createdAt'>[];
}

/** What a deploy changed: trigger ids. */
export interface TriggerChanges {
  created: string[];
  updated: string[];
  deleted: string[];
}

/**
 * The control plane's view of a function's manifest triggers: `plan` checks them before the deploy
 * is recorded (throws NIMBUS_ERR_INVALID_MANIFEST naming the file, line and field), `reconcile`
 * applies a plan after (creates and updates the declared ones, deletes manifest triggers of the
 * function no longer declared, never touches API-made ones), `removeFunction` deletes every trigger
 * of a deleted function, whatever its origin.
 */
export interface ManifestTriggers {
  plan(fn: string, declared: readonly DeclaredTrigger[]): Promise<TriggerPlan>;
  reconcile(plan: TriggerPlan): Promise<TriggerChanges>;
  removeFunction(fn: string): Promise<string[]>;
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
