import type { FunctionConfig, RevisionSnapshot } from '../core/types.js';

/** Shapes of the API's answers, as documented in docs/api.md (the contract with the server). */

export interface FunctionSummary {
  name: string;
  latestRevision: string;
  revisionCount: number;
  /** Who gets the traffic now (docs/traffic.md); absent from servers before traffic splits. */
  traffic?: { revision: string; percent: number }[];
  createdAt: string;
  updatedAt: string;
  runtime: string;
  url: string;
  /** `ready`: warm instances (busy, idle or frozen idle); `busy`: those of them with requests in flight. */
  instances: { ready: number; starting: number; busy: number };
}

export interface DeployResult {
  function: string;
  revision: string;
  created: boolean;
  digest: string;
  url: string;
  /** Set when the config asked for a snapshot (docs/snapshots.md). */
  snapshot?: RevisionSnapshot;
  /** App mode with snapshot: whether cold starts will be CRIU restores (docs/criu.md). */
  checkpoint?: CheckpointInfo;
  /** The new revision's share of the traffic now (docs/traffic.md). */
  percent?: number;
  /** The canary rollout the deploy started. */
  rollout?: { canary: string; percent: number; settings: { steps: number[]; interval: number } };
  /** Manifest triggers the deploy created, updated or deleted (docs/triggers.md); set when any changed. */
  triggers?: { created: string[]; updated: string[]; deleted: string[] };
}

/** A revision's CRIU checkpoint as the API reports it (runtime/criu CheckpointStatus). */
export interface CheckpointInfo {
  restores: boolean;
  state: 'ready' | 'pending' | 'failed' | 'unsupported';
  reason?: string;
  image?: { bytes: number; dumpMs: number; createdAt: string };
  restored: number;
}

export interface FunctionDetail {
  function: FunctionSummary;
  startError?: string;
  sandbox?: { sandboxed: boolean; warnings: string[] };
  config: FunctionConfig;
  revisions: {
    id: string;
    number: number;
    digest: string;
    createdAt: string;
    config: FunctionConfig;
    snapshot?: RevisionSnapshot;
    /** App mode with snapshot: whether cold starts restore a CRIU image (docs/criu.md). */
    checkpoint?: CheckpointInfo;
  }[];
  instances: {
    id: string;
    revision: string;
    state: string;
    inFlight: number;
    requests: number;
    startedAt: string;
    pid?: number;
  }[];
}

export interface LogRecord {
  time: string;
  function: string;
  revision: string;
  instance: string;
  requestId?: string;
  stream: 'stdout' | 'stderr' | 'system' | 'request';
  line: string;
  /** `request` records (one per invocation): the status, duration, cold or warm. */
  status?: number;
  durationMs?: number;
  cold?: boolean;
  error?: string;
  traceId?: string;
}

/** `GET /api/v1/functions/NAME/instances`. */
export interface InstanceWindow {
  function: string;
  instances: {
    id: string;
    revision: string;
    state: string;
    stateSince: string;
    inFlight: number;
    requests: number;
    startedAt: string;
    pid?: number;
    usage?: { cpuPercent: number; cpuMs: number; memoryBytes: number; memoryPeakBytes: number; pids: number };
  }[];
  recent: {
    id: string;
    revision: string;
    state: string;
    startedAt: string;
    endedAt: string;
    requests: number;
    reason: string;
  }[];
  startError?: string;
  sandbox?: { sandboxed: boolean; warnings: string[] };
}

/** One live revision in `GET /api/v1/functions/NAME/scale` (docs/autoscaling.md, "Seeing it"). */
export interface ScaleRevisionView {
  revision: string;
  metric: 'concurrency' | 'rps';
  target: number;
  targetUtilization: number;
  /** The minimum in force now (raised while a scheduled-warming window is open). */
  min: number;
  max: number;
  scheduled?: { min: number; until: string };
  desired: number;
  ready: number;
  starting: number;
  draining: number;
  panic: boolean;
  observed: {
    concurrency: { stable: number | null; panic: number | null; now: number };
    rps: { stable: number | null; panic: number | null };
    extraDemand: number;
  };
  queue: { length: number; limit: number };
  reason?: string;
  decidedAt?: string;
}
