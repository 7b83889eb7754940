import type { ScaleConfig } from '../core/types.js';
import type { Instance, InstanceSpec } from '../runtime/types.js';

/** Everything the instance manager needs to run one revision. Built by the gateway's resolver. */
export interface RevisionPlan {
  /** `FUNCTION/REVISION`, unique per revision. */
  key: string;
  function: string;
  revision: string;
  /** Template for its instances; the manager adds the id. */
  spec: Omit<InstanceSpec, 'id'>;
  /** Maximum in-flight requests per instance. */
  concurrency: number;
  scale: ScaleConfig;
}

/** The right to send one request to one instance. Release it exactly once. */
export interface Lease {
  instance: Instance;
  /** True when this request had to wait for an instance to start (a cold start). */
  cold: boolean;
  /**
   * Gives the slot back. `recycle: true` when the request timed out: the instance takes no new
   * requests and is stopped once its other requests finish.
   */
  release(options?: { recycle?: boolean }): void;
  /**
   * Marks the lease as an upgraded connection (WebSocket), which lives as long as its client
   * wants: a scale-down drain waits for it instead of stopping the instance at the timeout.
   */
  outlivesTimeout(): void;
}

export type SlotState = 'starting' | 'ready' | 'draining' | 'stopping';

/** What the API shows of a live instance. `busy` is a ready instance with requests in flight. */
export interface InstanceInfo {
  id: string;
  function: string;
  revision: string;
  state: SlotState | 'busy' | 'frozen';
  /** When the instance entered its current state. */
  stateSince: string;
  inFlight: number;
  requests: number;
  startedAt: string;
  readyAt?: string;
  lastUsedAt?: string;
  pid?: number;
  /** How it started: a new process (`spawn`), a warm pool cell (`pool`), a V8 snapshot (`snapshot`), a CRIU image (`criu`). */
  startMode?: 'spawn' | 'pool' | 'snapshot' | 'criu';
}

/** A log line from an instance or about one (`stream: 'system'`), tagged for the log store. */
export interface InstanceLogRecord {
  time: number;
  function: string;
  revision: string;
  instance: string;
  requestId?: string;
  stream: 'stdout' | 'stderr' | 'system';
  line: string;
}

/** An instance that has ended, kept for a while so users can see why. */
export interface EndedInstanceInfo {
  id: string;
  function: string;
  revision: string;
  /** `stopped` when the platform stopped it; `crashed` when it exited on its own or failed to start. */
  state: 'stopped' | 'crashed';
  startedAt: string;
  endedAt: string;
  requests: number;
  /** e.g. "idle timeout", "exited with code 1", "killed by SIGKILL", "failed to start: …". */
  reason: string;
}
