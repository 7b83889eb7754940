import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Clock } from '../core/clock.js';
import { NimbusError } from '../core/errors.js';
import { isValidFunctionName } from '../core/types.js';
import type { AsyncInvocations } from '../events/types.js';
import type { Bucket } from '../store/types.js';
import { planManifestTriggers, stableJson } from './manifest-plan.js';
import type {
  FireResult,
  ManifestTriggers,
  Trigger,
  TriggerChanges,
  TriggerContext,
  TriggerEvent,
  TriggerFactory,
  TriggerSpec,
  TriggerStatus,
} from './types.js';

export interface TriggerManagerOptions {
  bucket: Bucket<TriggerSpec>;
  invocations: AsyncInvocations;
  clock: Clock;
  factories: TriggerFactory[];
}

export interface TriggerView extends TriggerSpec {
  status: TriggerStatus;
}

export interface TriggerManager extends ManifestTriggers {
  /** Starts every stored trigger (at boot). */
  start(): Promise<void>;
  add(input: { id?: string; type: string; function: string; config?: Record<string, unknown> }): Promise<TriggerView>;
  remove(id: string): Promise<void>;
  list(): Promise<TriggerView[]>;
  get(id: string): Promise<TriggerView>;
  /** Stops every trigger. */
  close(): Promise<void>;
}

const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The CloudEvents 1.0 HTTP binary-mode headers for an event. */
export function cloudEventHeaders(event: TriggerEvent, now: number): Record<string, string> {
  const headers: Record<string, string> = {
    'ce-specversion': '1.0',
    'ce-id': event.id,
    'ce-source': event.source,
    'ce-type': event.type,
    'ce-time': (event.time ?? new Date(now)).toISOString(),
    'content-type': event.contentType ?? 'application/octet-stream',
  };
  if (event.subject) headers['ce-subject'] = event.subject;
  return headers;
}

/**
 * Keeps the configured triggers running: stored in the `triggers` bucket, started at boot, each
 * with its own status. Events become async invocations (durable, retried, dead-lettered), with an
 * id derived from the trigger and the event id so a redelivered message is not run again.
 */
export function createTriggerManager(options: TriggerManagerOptions): TriggerManager {
  const { bucket, invocations, clock } = options;
  const factories = new Map(options.factories.map((f) => [f.type, f]));
  const running = new Map<string, { trigger: Trigger; status: TriggerStatus; abort: AbortController }>();

  const view = (spec: TriggerSpec): TriggerView => ({
    ...spec,
    // Records from before origins were kept were all made through the API.
    origin: spec.origin ?? 'api',
    status: running.get(spec.id)?.status ?? { healthy: false, lastError: 'not running', delivered: 0, failed: 0 },
  });

  async function launch(spec: TriggerSpec): Promise<void> {
    const factory = factories.get(spec.type);
    const status: TriggerStatus = { healthy: false, delivered: 0, failed: 0 };
    const abort = new AbortController();
    // Every event in flight listens on it (a broker trigger holds up to its prefetch window).
    setMaxListeners(0, abort.signal);
    if (!factory) {
      status.lastError = `unknown trigger type ${spec.type}`;
      running.set(spec.id, { trigger: { start: async () => {}, stop: async () => {} }, status, abort });
      return;
    }
    const ctx: TriggerContext = {
      spec,
      clock,
      async fire(event, signal) {
        const id = `t-${spec.id}-${createHash('sha256').update(event.id).digest('hex').slice(0, 24)}`;
        const queued = await invocations.enqueue(
          spec.function,
          {
            method: 'POST',
            path: '/',
            headers: cloudEventHeaders(event, clock.now()),
            body: event.data,
          },
          { id },
        );
        status.lastEventAt = new Date(clock.now()).toISOString();
        const done = await invocations.waitFor(queued.id, AbortSignal.any([abort.signal, ...(signal ? [signal] : [])]));
        return done.status as FireResult;
      },
      setHealthy(healthy, error) {
        status.healthy = healthy;
        if (error !== undefined) status.lastError = error instanceof Error ? error.message : String(error);
        else if (healthy) delete status.lastError;
      },
      counted(result) {
        if (result === 'succeeded') status.delivered++;
        else status.failed++;
      },
    };
    const trigger = factory.create(ctx);
    running.set(spec.id, { trigger, status, abort });
    try {
      await trigger.start();
    } catch (err) {
      ctx.setHealthy(false, err);
    }
  }

  async function halt(id: string, removed = false): Promise<void> {
    const entry = running.get(id);
    if (!entry) return;
    running.delete(id);
    entry.abort.abort(new Error('trigger stopped'));
    await entry.trigger.stop().catch(() => {});
    if (removed) await entry.trigger.remove?.().catch(() => {});
  }

  return {
    async start() {
      for (const { value } of await bucket.list()) await launch(value);
    },
    async add(input) {
      const bad = (why: string) => new NimbusError('NIMBUS_ERR_INVALID_REQUEST', why);
      const factory = factories.get(input.type);
      if (!factory)
        throw bad(`type: expected one of ${[...factories.keys()].join(', ')}, got ${JSON.stringify(input.type)}`);
      if (!isValidFunctionName(input.function)) throw bad(`function: invalid name ${JSON.stringify(input.function)}`);
      const id = input.id ?? `${input.type}-${input.function}-${Math.random().toString(36).slice(2, 8)}`;
      if (!ID_RE.test(id)) throw bad(`id: use 1-63 lowercase letters, digits and dashes, got ${JSON.stringify(id)}`);
      const spec: TriggerSpec = {
        id,
        type: input.type,
        function: input.function,
        config: factory.validate(input.config ?? {}),
        createdAt: new Date(clock.now()).toISOString(),
        origin: 'api',
      };
      await bucket.create(id, spec);
      await launch(spec);
      return view(spec);
    },
    async remove(id) {
      const entry = await bucket.get(id);
      if (!entry) throw new NimbusError('NIMBUS_ERR_TRIGGER_NOT_FOUND', `Trigger not found: ${id}`);
      await halt(id, true);
      await bucket.delete(id);
    },
    async list() {
      return (await bucket.list()).map((e) => view(e.value));
    },
    async get(id) {
      const entry = await bucket.get(id);
      if (!entry) throw new NimbusError('NIMBUS_ERR_TRIGGER_NOT_FOUND', `Trigger not found: ${id}`);
      return view(entry.value);
    },
    async close() {
      await Promise.all([...running.keys()].map((id) => halt(id)));
    },
    async plan(fn, declared) {
      const existing = declared.length > 0 ? (await bucket.list()).map((e) => e.value) : [];
      return planManifestTriggers(fn, declared, factories, existing);
    },
    async reconcile(plan) {
      const changes: TriggerChanges = { created: [], updated: [], deleted: [] };
      const wanted = new Map(plan.specs.map((s) => [s.id, s]));
      const now = new Date(clock.now()).toISOString();
      for (const { key, value } of await bucket.list()) {
        if (value.origin !== 'manifest' || value.function !== plan.function || wanted.has(key)) continue;
        await halt(key, true);
        await bucket.delete(key);
        changes.deleted.push(key);
      }
      for (const spec of plan.specs) {
        const current = await bucket.get(spec.id);
        if (!current) {
          const created = { ...spec, createdAt: now };
          await bucket.create(spec.id, created);
          await launch(created);
          changes.created.push(spec.id);
          continue;
        }
        const old = current.value;
        // Planned against the same store moments ago; an API add in between is not overwritten.
        if (old.origin !== 'manifest' || old.function !== plan.function)
          throw new NimbusError('NIMBUS_ERR_CONFLICT', `Trigger ${spec.id} was created through the API meanwhile`);
        if (old.type === spec.type && stableJson(old.config) === stableJson(spec.config) && old.name === spec.name)
          continue;
        // Changed in place: a stop (not a removal: broker-side state such as a durable consumer stays).
        await halt(spec.id);
        const updated = { ...spec, createdAt: old.createdAt, updatedAt: now };
        await bucket.update(spec.id, updated, current.revision);
        await launch(updated);
        changes.updated.push(spec.id);
      }
      return changes;
    },
    async removeFunction(fn) {
      const removed: string[] = [];
      for (const { key, value } of await bucket.list()) {
        if (value.function !== fn) continue;
        await halt(key, true);
        await bucket.delete(key);
        removed.push(key);
      }
      return removed;
    },
  };
}
