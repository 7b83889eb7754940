import type { Clock } from '../core/clock.js';
import { toNimbusError } from '../core/errors.js';
import { DEFAULT_TRAFFIC, latestReleased, trafficOf } from '../core/traffic.js';
import type { FunctionRecord, RevisionRecord, RolloutSettings } from '../core/types.js';
import type { Bucket } from '../store/types.js';
import { canarySpec, judge, promotedSpec, StepWindow, stableRevisions } from './analysis.js';
import {
  type InvocationSample,
  type Release,
  type ReleasePolicy,
  ROLLOUT_DEFAULTS,
  type RolloutEvent,
  type RolloutRecord,
} from './types.js';

export interface RolloutControllerOptions {
  clock: Clock;
  /** Where rollouts are kept, one record per function (its latest rollout). */
  bucket: Bucket<RolloutRecord>;
  /**
   * Changes a function's record under its lock and reroutes before resolving
   * (FunctionsService.updateFunction). `mutate` returning undefined changes nothing.
   */
  update(name: string, mutate: (fn: FunctionRecord) => FunctionRecord | undefined): Promise<unknown>;
  /** Events kept per rollout (the first and the latest). Default 200. */
  maxEvents?: number;
}

/**
 * Automated canaries: a deploy with rollout settings gives the new revision the first step's
 * share; every `interval` the step is judged from the gateway's invocation records (canary vs
 * stable, judge() in analysis.ts): wait, step up, promote at 100, or roll back. Every step and
 * decision is recorded in the bucket. Running rollouts resume after a restart with the current
 * step's window started over (their stats lived in memory).
 */
export interface RolloutController extends ReleasePolicy {
  /** Feeds one finished invocation (the gateway's onInvocation). Cheap; ignores functions without a rollout. */
  onInvocation(sample: InvocationSample): void;
  /** The function's latest rollout, running or finished. */
  get(name: string): Promise<RolloutRecord | undefined>;
  /** Stops a running rollout and restores the traffic it started from. Undefined when none runs. */
  abort(name: string, reason: string): Promise<RolloutRecord | undefined>;
  /**
   * Stops a running rollout without touching traffic, because someone set traffic by hand. Call it
   * under the function's lock, before writing the new traffic, so no step can overwrite it.
   */
  interrupt(name: string, reason: string): void;
  /** The function was deleted. */
  forget(name: string): Promise<void>;
  /** Resumes rollouts that were running when the node stopped. */
  start(): Promise<void>;
  /** Stops timers and waits for pending writes. */
  close(): Promise<void>;
}

interface Active {
  record: RolloutRecord;
  windows: Map<string, StepWindow>;
  cancelTimer: () => void;
  stopped: boolean;
}

export function createRolloutController(options: RolloutControllerOptions): RolloutController {
  const { clock, bucket } = options;
  const maxEvents = options.maxEvents ?? 200;
  const active = new Map<string, Active>();
  const writes = new Map<string, Promise<unknown>>();
  let closed = false;
  const iso = () => new Date(clock.now()).toISOString();

  // Writes of one function's record happen in order; close() waits for all of them.
  const persist = (record: RolloutRecord): Promise<void> => {
    const snapshot = structuredClone(record);
    const prev = writes.get(record.function) ?? Promise.resolve();
    const next = prev
      .then(async () => void (await bucket.put(record.function, snapshot)))
      .catch((err) => {
        console.error(`nimbus: rollout of ${record.function} not saved: ${(err as Error).message}`);
      });
    writes.set(record.function, next);
    return next;
  };

  const note = (record: RolloutRecord, event: Omit<RolloutEvent, 'time' | 'percent'>) => {
    // A step that keeps waiting is one event, brought up to date, not one per interval.
    if (event.action === 'wait' && record.events.at(-1)?.action === 'wait') record.events.pop();
    record.events.push({ time: iso(), percent: record.percent, ...event });
    if (record.events.length > maxEvents) record.events.splice(1, record.events.length - maxEvents);
    record.updatedAt = iso();
  };

  const finish = (a: Active, status: RolloutRecord['status'], event: Omit<RolloutEvent, 'time' | 'percent'>) => {
    a.stopped = true;
    a.cancelTimer();
    if (active.get(a.record.function) === a) active.delete(a.record.function);
    a.record.status = status;
    a.record.finishedAt = iso();
    note(a.record, event);
    return persist(a.record);
  };

  const schedule = (a: Active) => {
    a.cancelTimer();
    a.cancelTimer = clock.setTimer(() => void evaluate(a), a.record.settings.interval * 1000);
  };

  const activate = (record: RolloutRecord): Active => {
    const a: Active = { record, windows: new Map(), cancelTimer: () => {}, stopped: false };
    active.set(record.function, a);
    if (!closed) schedule(a);
    return a;
  };

  /**
   * Writes traffic only while this rollout is still the running one (checked under the function's
   * lock, so a deploy or a hand-set spec in between wins). Resolves whether it wrote.
   */
  const route = async (a: Active, change: Partial<FunctionRecord>): Promise<boolean> => {
    let applied = false;
    await options.update(a.record.function, (fn) => {
      if (a.stopped || active.get(fn.name) !== a) return undefined;
      applied = true;
      return { ...fn, ...change };
    });
    return applied;
  };

  async function evaluate(a: Active): Promise<void> {
    if (a.stopped || closed) return;
    const { record } = a;
    const canary = a.windows.get(record.canary)?.stats() ?? new StepWindow().stats();
    const stableWindow = new StepWindow();
    for (const [revision, w] of a.windows) if (revision !== record.canary) stableWindow.merge(w);
    const stable = stableWindow.stats();
    const { verdict, reason } = judge(record.settings, canary, stable);
    try {
      if (verdict === 'wait') {
        // The window keeps accumulating until the step has enough canary requests.
        note(record, { action: 'wait', reason, canary, stable });
        await persist(record);
        return schedule(a);
      }
      if (verdict === 'fail') {
        if (!(await route(a, { traffic: record.original, latestReady: record.previousLatest }))) return;
        record.percent = 0;
        return void (await finish(a, 'rolled-back', { action: 'rollback', reason, canary, stable }));
      }
      const next = record.settings.steps[record.step + 1];
      if (next === undefined || next >= 100) {
        if (!(await route(a, { traffic: promotedSpec(record.original, record.canary), latestReady: record.canary })))
          return;
        record.percent = 100;
        return void (await finish(a, 'promoted', { action: 'promote', reason, canary, stable }));
      }
      if (!(await route(a, { traffic: canarySpec(record.original, record.previousLatest, record.canary, next) })))
        return;
      record.step++;
      record.percent = next;
      record.stepStartedAt = iso();
      a.windows.clear();
      note(record, { action: 'step', reason, canary, stable });
      await persist(record);
      schedule(a);
    } catch (err) {
      // The function was deleted, or the store failed: stop here, visibly.
      if (!a.stopped) await finish(a, 'aborted', { action: 'abort', reason: `stopped: ${toNimbusError(err).message}` });
    }
  }

  const settingsFor = (revision: RevisionRecord, canary: boolean | undefined): RolloutSettings | undefined => {
    if (canary === false) return undefined;
    const settings = revision.config.rollout ?? (canary ? ROLLOUT_DEFAULTS : undefined);
    return settings?.steps.some((s) => s < 100) ? settings : undefined;
  };

  return {
    async release(current, revision, canary): Promise<Release> {
      const running = current ? active.get(current.name) : undefined;
      // A deploy during a rollout supersedes it: the new revision starts from the traffic before it.
      const base = running ? running.record.original : current ? [...trafficOf(current)] : [...DEFAULT_TRAFFIC];
      const supersede = async () => {
        if (running && !running.stopped)
          await finish(running, 'aborted', { action: 'abort', reason: `superseded by ${revision.id}` });
      };
      const settings = settingsFor(revision, canary);
      if (!current || !settings)
        return {
          traffic: current ? base : undefined,
          latestReady: undefined,
          commit: async () => void (await supersede()),
        };

      const previousLatest = running ? running.record.previousLatest : latestReleased(current);
      const steps = settings.steps.filter((s) => s < 100);
      const now = iso();
      const record: RolloutRecord = {
        function: current.name,
        canary: revision.id,
        stable: stableRevisions(base, previousLatest),
        settings,
        status: 'running',
        step: 0,
        percent: steps[0]!,
        original: base,
        previousLatest,
        startedAt: now,
        updatedAt: now,
        stepStartedAt: now,
        events: [],
      };
      note(record, {
        action: 'start',
        reason: `canary ${revision.id} gets ${record.percent}% (steps ${settings.steps.join(' → ')}, every ${settings.interval} s)`,
      });
      return {
        traffic: canarySpec(base, previousLatest, revision.id, record.percent),
        latestReady: previousLatest,
        async commit() {
          await supersede();
          activate(record);
          await persist(record);
          return record;
        },
      };
    },

    onInvocation(sample) {
      const a = active.get(sample.function);
      if (!a || !sample.revision) return;
      let w = a.windows.get(sample.revision);
      if (!w) {
        w = new StepWindow();
        a.windows.set(sample.revision, w);
      }
      w.add(sample.status, sample.durationMs);
    },

    async get(name) {
      const a = active.get(name);
      if (a) return structuredClone(a.record);
      return (await bucket.get(name))?.value;
    },

    async abort(name, reason) {
      const a = active.get(name);
      if (!a) return undefined;
      if (!(await route(a, { traffic: a.record.original, latestReady: a.record.previousLatest }))) return undefined;
      a.record.percent = 0;
      await finish(a, 'aborted', { action: 'abort', reason });
      return structuredClone(a.record);
    },

    interrupt(name, reason) {
      const a = active.get(name);
      if (a) void finish(a, 'aborted', { action: 'abort', reason });
    },

    async forget(name) {
      const a = active.get(name);
      if (a) {
        a.stopped = true;
        a.cancelTimer();
        active.delete(name);
      }
      await writes.get(name);
      await bucket.delete(name);
    },

    async start() {
      for (const { value } of await bucket.list()) {
        if (value.status !== 'running' || active.has(value.function)) continue;
        value.stepStartedAt = iso();
        note(value, { action: 'resume', reason: 'node restarted: this step is observed again from now' });
        activate(value);
        await persist(value);
      }
    },

    async close() {
      closed = true;
      for (const a of active.values()) a.cancelTimer();
      await Promise.all(writes.values());
    },
  };
}
