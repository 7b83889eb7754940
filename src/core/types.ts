/** Shared shapes of the control plane's records. Plain data, JSON-serialisable. */

/** node: a function module in its own process; app: a program on $PORT; isolate: a fetch handler in a V8 isolate (docs/isolate.md). */
export type RuntimeKind = 'node' | 'app' | 'isolate';

/** `none`: an empty network namespace (loopback only); `egress`: the host's network. */
export type NetworkMode = 'none' | 'egress';

/**
 * Scaling settings of one function (docs/autoscaling.md). resolveConfig fills every field but
 * `maxQueue`; the optional ones may be missing in revisions stored before the autoscaler, and the
 * autoscaler (src/autoscaler/settings.ts) applies the same defaults then.
 */
export interface ScaleConfig {
  /** Instances kept warm at all times. Default 0 (scale to zero). */
  min: number;
  /** Upper bound on instances. Default 10. */
  max: number;
  /**
   * Scale-to-zero grace: seconds without any request in flight or held before the revision may
   * go to zero (above `min`). Default 300.
   */
  idleTimeout: number;
  /** Instances started when the revision is set up. Default `min`. */
  initial?: number;
  /** What the autoscaler scales on. Default `concurrency`. */
  metric?: 'concurrency' | 'rps';
  /** Metric value per instance: in-flight requests (default: `concurrency`, its ceiling) or requests/s (default 200). */
  target?: number;
  /** Share of `target` aimed at, 0.01-1. Default 0.7. */
  targetUtilization?: number;
  /** Stable window in seconds (the panic window is a tenth of it). Default 60. */
  window?: number;
  /** Seconds a lower desire must hold before instances are drained. Default 0. */
  scaleDownDelay?: number;
  /** Requests held per revision while instances start; past it 503. Default: the node's (1000). */
  maxQueue?: number;
  /** Scheduled warming: windows during which the minimum is raised (docs/autoscaling.md). */
  schedule?: ScaleSchedule[];
}

/** One scheduled-warming window: from each `cron` occurrence, for `duration` seconds, keep `min` instances. */
export interface ScaleSchedule {
  /** When a window opens: 5 or 6 cron fields (croner syntax), e.g. "0 8 * * 1-5". */
  cron: string;
  /** IANA time zone the cron is read in. Default UTC. */
  timezone?: string;
  /** Seconds the window stays open. */
  duration: number;
  /** Instances kept during the window (bounded by `max`). */
  min: number;
}

/**
 * A function's configuration after defaults are applied: what `nimbus.yaml` / `nimbus.json` and
 * CLI flags resolve to. Part of a revision's identity (with the artifact digest).
 */
export interface FunctionConfig {
  name: string;
  runtime: RuntimeKind;
  /** Entry file, relative to the source dir (node). Default: the first of index.ts, index.mts, index.js, index.mjs, index.cjs. */
  handler?: string;
  /** App mode: the program to run, as argv. It must listen on $PORT. */
  command?: string[];
  env: Record<string, string>;
  /** Memory in MB: a hard limit. Default 256. */
  memory: number;
  /** CPU cores (e.g. 0.5). Unset: scaled with memory, 1 core per 1769 MB, at least 0.5. */
  cpu?: number;
  /** Network access. Default `egress`. */
  network: NetworkMode;
  /** Request timeout in seconds. Default 30. */
  timeout: number;
  /** Maximum in-flight requests per instance. Default 10. */
  concurrency: number;
  scale: ScaleConfig;
  /** Set when deploys of this function are released as automated canaries. */
  rollout?: RolloutSettings;
  /**
   * V8 startup snapshot of the init (runtime node, docs/snapshots.md): `true` builds one at deploy
   * and deploys without it when it cannot be built; `required` fails the deploy then; `false`:
   * never. Unset (`auto`, the manifest's `snapshot: auto` is stored as unset so revisions made
   * before it keep their identity): node functions get one built in the background once a cold
   * start's init is measured over the node's threshold. App mode: unset means no CRIU image.
   */
  snapshot?: boolean | 'required';
}

/** An immutable, built version of a function. */
export interface RevisionRecord {
  /** `r1`, `r2`, … */
  id: string;
  function: string;
  number: number;
  /** sha256 (hex) of the artifact's content. */
  digest: string;
  /** sha256 (hex) of digest + normalised config: equal hashes mean "nothing changed". */
  identity: string;
  config: FunctionConfig;
  /** node: the bundled module inside the artifact dir; app: unset. */
  entry?: string;
  createdAt: string;
  /** The V8 startup snapshot built at deploy, or why there is none (config.snapshot set). */
  snapshot?: RevisionSnapshot;
}

/**
 * A revision's snapshot (docs/snapshots.md). `ready`: a derived artifact holding the revision's
 * files plus the blob, made for one Node version and snapshot guest (a blob loads only in the
 * Node it was built with). `failed`: why the build failed; the revision runs without one.
 */
export type RevisionSnapshot =
  | {
      status: 'ready';
      /** The derived artifact (revision files + `blob`). */
      digest: string;
      /** The blob's path inside it. */
      blob: string;
      node: string;
      guest: string;
      bytes: number;
      buildMs: number;
      /** Set when built automatically (`snapshot: auto`) after a slow init. */
      auto?: AutoSnapshotCause;
    }
  | { status: 'failed'; error: string; node: string; guest: string; auto?: AutoSnapshotCause }
  /** `snapshot: auto`: the measured init was under the threshold, so no snapshot is built (yet). */
  | { status: 'skipped'; node: string; guest: string; auto: AutoSnapshotCause }
  /** `snapshot: auto`: being built in the background; instances start the normal way meanwhile. */
  | { status: 'building'; node: string; guest: string; auto: AutoSnapshotCause };

/** Why an automatic snapshot was (or was not) built: the init a cold start measured, and the node's threshold. */
export interface AutoSnapshotCause {
  initMs: number;
  thresholdMs: number;
}

/**
 * One entry of a traffic spec (Knative-shaped): a share of requests for a named revision, or for
 * `latest` (the function's newest released revision, followed as deploys happen), and/or a tag
 * that addresses the target directly as `/fn/NAME@TAG/…`. A tag-only entry has `percent: 0`.
 */
export interface TrafficTarget {
  /** `r3`; exclusive with `latest`. */
  revision?: string;
  /** Follow the newest released revision; exclusive with `revision`. */
  latest?: boolean;
  /** Whole percent, 0-100; the percents of a spec sum to 100. */
  percent: number;
  /** DNS-label-like name (`canary`, `blue`). */
  tag?: string;
}

/** Settings of an automated canary (`rollout:` in the manifest, or `deploy --canary`). See docs/traffic.md. */
export interface RolloutSettings {
  /** Canary shares in percent, increasing; reaching 100 promotes. Default [5, 25, 50, 100]. */
  steps: number[];
  /** Seconds each step is observed before it is judged. Default 60. */
  interval: number;
  /** Canary error rate (5xx, platform errors included) minus the stable one, in percentage points, beyond which it is rolled back. Default 5. */
  maxErrorRateIncrease: number;
  /** Canary p95 / stable p95 beyond which it is rolled back. Default 1.5. */
  maxP95Ratio: number;
  /** Latencies below this many ms count as this much in the p95 comparison (noise floor). Default 20. */
  p95FloorMs: number;
  /** Canary requests a step needs before it is judged; with fewer, the step is extended. Default 20. */
  minRequests: number;
}

/** A function: its name, and which revisions get the traffic. */
export interface FunctionRecord {
  name: string;
  createdAt: string;
  updatedAt: string;
  /** The newest revision created. */
  latestRevision: string;
  revisionCount: number;
  /**
   * The revision `latest` traffic follows: the newest one released. Differs from latestRevision
   * while a canary of the newest runs, and after a canary was rolled back. Unset: latestRevision.
   */
  latestReady?: string;
  /** Who gets the traffic. Unset (records from before traffic splits): `[{ latest: true, percent: 100 }]`. */
  traffic?: TrafficTarget[];
}

const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** Function names: DNS-label-like, so they fit URLs, KV keys and cgroup names alike. */
export function isValidFunctionName(name: string): boolean {
  return NAME_RE.test(name) && !name.endsWith('-');
}
