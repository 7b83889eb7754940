import type { FunctionRecord, RevisionRecord, RolloutSettings, TrafficTarget } from '../core/types.js';

export { ROLLOUT_DEFAULTS } from '../core/traffic.js';

export type RolloutStatus = 'running' | 'promoted' | 'rolled-back' | 'aborted';

/** What one revision did during one step's window. */
export interface WindowStats {
  requests: number;
  /** 5xx answers, platform errors included. */
  errors: number;
  /** errors / requests in percent (0 without requests). */
  errorRate: number;
  /** 95th percentile latency in ms; unset without requests. */
  p95Ms?: number;
}

/** One recorded step or decision of a rollout. */
export interface RolloutEvent {
  time: string;
  action: 'start' | 'step' | 'wait' | 'promote' | 'rollback' | 'abort' | 'resume';
  /** The canary's share after this event. */
  percent: number;
  reason: string;
  canary?: WindowStats;
  stable?: WindowStats;
}

/** A function's latest rollout, as stored in the `rollouts` bucket under the function's name. */
export interface RolloutRecord {
  function: string;
  /** The revision being rolled out. */
  canary: string;
  /** The revisions that shared the traffic before (the comparison baseline). */
  stable: string[];
  settings: RolloutSettings;
  status: RolloutStatus;
  /** Index into settings.steps of the current share. */
  step: number;
  /** The canary's current share. */
  percent: number;
  /** The traffic spec before the rollout, restored on rollback (and on promotion when it follows `latest`). */
  original: TrafficTarget[];
  /** The revision `latest` stood for before the rollout. */
  previousLatest: string;
  startedAt: string;
  updatedAt: string;
  stepStartedAt: string;
  finishedAt?: string;
  events: RolloutEvent[];
}

/** The function-record fields a release writes together with a new revision, atomically. */
export interface Release {
  traffic?: TrafficTarget[];
  latestReady?: string;
  /** Runs after the record is written, still under the function's lock; must not update the function. */
  commit(): Promise<RolloutRecord | undefined>;
}

/**
 * How a new revision gets traffic, decided while a deploy records it (under the function's lock,
 * so no request ever sees an intermediate state). `canary`: the deploy's --canary / --no-canary;
 * unset follows the revision's `rollout:` settings.
 */
export interface ReleasePolicy {
  release(current: FunctionRecord | undefined, revision: RevisionRecord, canary: boolean | undefined): Promise<Release>;
}

/** One invocation as the gateway reports it (a subset of its InvocationRecord). */
export interface InvocationSample {
  function: string;
  revision?: string;
  status: number;
  durationMs: number;
}
