/** Shared shapes of the control plane's records. Plain data, JSON-serialisable. */

export type RuntimeKind = 'node' | 'app';

/** `none`: an empty network namespace (loopback only); `egress`: the host's network. */
export type NetworkMode = 'none' | 'egress';

/** Scaling settings of one function (first cut; the autoscaler issue widens it). */
export interface ScaleConfig {
  /** Instances kept warm at all times. Default 0 (scale to zero). */
  min: number;
  /** Upper bound on instances. Default 10. */
  max: number;
  /** Seconds an instance may sit idle before it is stopped. Default 300. */
  idleTimeout: number;
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
}

/** A function: its name, and which revision gets the traffic. */
export interface FunctionRecord {
  name: string;
  createdAt: string;
  updatedAt: string;
  /** Revision that serves traffic (the newest, until the traffic issue adds splits). */
  latestRevision: string;
  revisionCount: number;
}

const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** Function names: DNS-label-like, so they fit URLs, KV keys and cgroup names alike. */
export function isValidFunctionName(name: string): boolean {
  return NAME_RE.test(name) && !name.endsWith('-');
}
