/**
 * The Runtime (provider) contract, in the spirit of virtual-kubelet's PodLifecycleHandler: the
 * smallest surface that lets the instance manager start, stop and list instances of a revision,
 * and talk to each through the web-standard `fetch(Request) → Response`. Providers know nothing
 * of routing, scaling or the store. Every provider must pass `runRuntimeConformance`
 * (runtime/conformance.ts).
 */

import type { Duplex } from 'node:stream';
import type { AbortLike } from '../core/abort.js';
import type { RuntimeKind } from '../core/types.js';
import type { InstanceStats } from './sandbox/cgroups.js';

export interface InstanceSpec {
  /** Unique id chosen by the caller (the instance manager). */
  id: string;
  function: string;
  revision: string;
  kind: RuntimeKind;
  /** Local directory holding the revision's artifact. Treated as read-only. */
  artifactDir: string;
  /** node: the module to load, relative to artifactDir. */
  entry?: string;
  /**
   * node: a V8 startup snapshot blob, relative to artifactDir (docs/snapshots.md): the instance is
   * restored from it instead of loading `entry` (which is still set).
   */
  snapshotBlob?: string;
  /**
   * App mode with `snapshot: true`: the revision identity its CRIU image is kept under; providers
   * that checkpoint (runtime/criu) restore cold starts from it, the others ignore it.
   */
  checkpoint?: string;
  /** app: argv of the program to run; it must listen on $PORT. */
  command?: string[];
  /** The function's own environment variables (the platform adds its own on top). */
  env: Record<string, string>;
  memoryMb: number;
  /** CPU cores (e.g. 0.5); unset: scaled with memoryMb. Enforced by sandboxing providers. */
  cpu?: number;
  /** `none`: no network but loopback; `egress` (default): the host's network. */
  network?: 'none' | 'egress';
  /** Per-request timeout the function sees in its context (the gateway enforces it). */
  timeoutMs: number;
  /** How long `start` may take before it fails with NIMBUS_ERR_START_FAILED. */
  startTimeoutMs?: number;
}

export type InstanceState = 'starting' | 'ready' | 'stopping' | 'stopped' | 'failed';

/**
 * How an instance started: `spawn` a new process, `pool` a pre-started warm cell specialised to
 * the function (process/cell-pool.ts), `snapshot` restored from a V8 startup snapshot, `criu` an
 * app-mode instance restored from its revision's CRIU image (runtime/criu).
 */
export type StartMode = 'spawn' | 'pool' | 'snapshot' | 'criu';

/** Why an instance ended. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Human-readable: "exited with code 1", "killed by SIGKILL", "stopped". */
  reason: string;
  /** True when the platform asked it to stop. */
  expected: boolean;
}

export interface Instance {
  readonly id: string;
  readonly spec: InstanceSpec;
  /** Current state; changes are also reported as `state` events. */
  readonly state: InstanceState;
  /** Process id for process providers (for CPU/memory sampling), undefined otherwise. */
  readonly pid?: number;
  /** How it started (so cold starts can be counted by mode); unset means `spawn`. */
  readonly startMode?: StartMode;
  /**
   * Milliseconds the function's own init took in this instance (module import and top-level
   * code), when the provider knows it; unset for restores (their init ran at the snapshot build).
   */
  readonly initMs?: number;
  /**
   * Sends one request to the instance. Bodies stream both ways. The returned promise rejects with
   * NimbusError NIMBUS_ERR_INSTANCE_CRASHED when the instance dies before answering; a function
   * that throws answers 500 itself (with `x-nimbus-error: NIMBUS_ERR_FUNCTION_ERROR`). Aborting
   * `signal` cancels the request (the instance may be recycled by the caller).
   */
  fetch(request: Request, options?: { signal?: AbortLike }): Promise<Response>;
  /**
   * Optional: a raw byte stream to the instance's HTTP/1.1 endpoint, for one request that switches
   * protocols (a WebSocket handshake). The caller writes the request head and pipes both ways; the
   * instance's answer (101, or any other) comes back as bytes. App-mode instances of the process
   * providers offer it; for the others the gateway answers 501 NIMBUS_ERR_UPGRADE_UNSUPPORTED.
   */
  tunnel?(): Promise<Duplex>;
}

export type RuntimeEvent =
  | { type: 'state'; id: string; state: InstanceState; exit?: ExitInfo }
  /** One line of the instance's stdout/stderr; `requestId` when emitted while serving one. */
  /** `system`: a line about the instance from the platform (e.g. why a CRIU restore fell back). */
  | { type: 'log'; id: string; stream: 'stdout' | 'stderr' | 'system'; line: string; requestId?: string; time: number };

export interface Runtime {
  /** e.g. "process". */
  readonly name: string;
  /**
   * Starts an instance and resolves once it is ready to serve. Rejects with NimbusError
   * NIMBUS_ERR_START_FAILED (message saying why, e.g. the module threw at init, or the app never
   * listened on $PORT) — in that case nothing is left running. Aborting `signal` stops the start.
   */
  start(spec: InstanceSpec, options?: { signal?: AbortSignal }): Promise<Instance>;
  /**
   * Stops an instance: a graceful stop (SIGTERM, wait up to `graceMs`, default 2000), then a
   * forced kill. May be called more than once and for unknown ids: it never throws for those.
   * Resolves when the instance is gone.
   */
  stop(id: string, options?: { graceMs?: number }): Promise<void>;
  /** Live instances (not yet stopped). The returned array is a snapshot. */
  list(): Instance[];
  /** Subscribes to state and log events; returns the unsubscribe function. */
  subscribe(listener: (event: RuntimeEvent) => void): () => void;
  /**
   * Optional: cumulative CPU and current memory of a live instance (all its processes), or
   * undefined when unknown or gone. Cheap enough to call once a second per instance.
   */
  stats?(id: string): InstanceStats | undefined;
  /**
   * Optional: suspends every process of an idle instance (no CPU, no timers firing) and resumes
   * it. Resolve to false when the instance cannot be frozen. `stop` must work on a frozen instance.
   */
  freeze?(id: string): Promise<boolean>;
  thaw?(id: string): Promise<boolean>;
  /** Stops every instance. */
  close(): Promise<void>;
}

/** Headers the platform sets on requests to an instance. */
export const REQUEST_ID_HEADER = 'x-nimbus-request-id';
/** Epoch milliseconds after which the gateway gives up on the request. */
export const DEADLINE_HEADER = 'x-nimbus-deadline';
