import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { InvocationRecord } from '../gateway/gateway.js';
import type { ScaleView } from '../instances/scaling.js';
import type { InstanceInfo } from '../instances/types.js';
import type { ResourceSample } from './instance-sampler.js';
import { CounterFamily, type CounterSeries, HistogramFamily, type HistogramSeries } from './series.js';

/** What the metrics read at scrape time (gauges), so nothing is kept twice. */
export interface MetricsSources {
  /** Live instances with their latest resource sample. */
  instances(): (InstanceInfo & { usage?: ResourceSample })[];
  /** Requests held per function, waiting for an instance (the activator queue). */
  waiting(): Map<string, number>;
  /** The autoscaler's view of each live revision (desired instances, panic, observed load). */
  autoscale?(): ScaleView[];
  /** Requests in flight through the gateway. */
  inFlight(): number;
  /** Open upgraded connections (WebSockets) per function. */
  upgraded?(): Map<string, number>;
  /** Async invocations per function and state (queued, running, dead…), when async is wired. */
  asyncQueue?(): Promise<Map<string, Record<string, number>>>;
}

export interface Metrics {
  /** The gateway reports each finished request here. */
  onInvocation(record: InvocationRecord): void;
  /**
   * The instance manager reports each start (a cold start) here; `mode` is how the instance was
   * made (`spawn` a fresh process, `pool` a pre-started one, `snapshot` restored), `spawn` if unsaid.
   */
  onStart(event: { function: string; revision: string; ok: boolean; durationMs: number; mode?: string }): void;
  /** Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
}

// Labels are function and revision only (plus small fixed sets): never instance ids or request
// paths, so the number of series stays bounded by the number of revisions.
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// An upgraded connection (a WebSocket) lives from seconds to days.
const CONNECTION_BUCKETS = [1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600];

/** Prometheus metrics of the node, via prom-client, in a registry of their own. */
export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nimbus_node_' });

  // The request path's two metrics update plain numbers (series.ts), read only when scraped.
  const invocations = new CounterFamily(
    'nimbus_invocations_total',
    'Requests served through the gateway, by status code class and whether they waited for a cold start',
    registry,
  );
  const errors = new Counter({
    name: 'nimbus_invocation_errors_total',
    help: 'Failed requests: kind "function" (the function answered 5xx) or "platform" (Nimbus answered, code says why)',
    labelNames: ['function', 'kind', 'code'],
    registers: [registry],
  });
  const duration = new HistogramFamily(
    'nimbus_invocation_duration_seconds',
    'Gateway time per request, from arrival to the end of the response',
    registry,
    DURATION_BUCKETS,
  );
  // A WebSocket's life is not a request's latency: in the request histogram, one open for an hour
  // would be an hour-slow request and move every latency quantile of its function.
  const connectionDuration = new HistogramFamily(
    'nimbus_upgraded_connection_duration_seconds',
    'Life of each upgraded connection (WebSocket), from its request to its close; not in nimbus_invocation_duration_seconds',
    registry,
    CONNECTION_BUCKETS,
  );
  /** The series one revision's requests update, found with two map lookups and no label objects. */
  interface RevisionSeries {
    duration: HistogramSeries;
    /** Made on the revision's first upgraded connection. */
    connection?: HistogramSeries;
    /** By status class × 2 + cold (status codes are three digits: a handful of entries). */
    invocations: (CounterSeries | undefined)[];
  }
  const byFunction = new Map<string, Map<string, RevisionSeries>>();
  const seriesOf = (fn: string, revision: string): RevisionSeries => {
    let revisions = byFunction.get(fn);
    if (!revisions) {
      revisions = new Map();
      byFunction.set(fn, revisions);
    }
    let series = revisions.get(revision);
    if (!series) {
      series = { duration: duration.series({ function: fn, revision }), invocations: [] };
      revisions.set(revision, series);
    }
    return series;
  };
  const coldStarts = new Counter({
    name: 'nimbus_cold_starts_total',
    help: 'Instance starts, by start mode and outcome',
    labelNames: ['function', 'revision', 'mode', 'outcome'],
    registers: [registry],
  });
  const coldStartDuration = new Histogram({
    name: 'nimbus_cold_start_duration_seconds',
    help: 'Time from asking for an instance to it being ready',
    labelNames: ['function', 'mode'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'nimbus_inflight_requests',
    help: 'Requests being served through the gateway now',
    registers: [registry],
    collect() {
      this.set(sources.inFlight());
    },
  });
  new Gauge({
    name: 'nimbus_activator_queue_length',
    help: 'Requests held waiting for an instance slot',
    labelNames: ['function'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [fn, n] of sources.waiting()) this.set({ function: fn }, n);
    },
  });
  const { upgraded } = sources;
  if (upgraded)
    new Gauge({
      name: 'nimbus_upgraded_connections',
      help: 'Open upgraded connections (WebSockets) carried to app-mode functions, each holding a slot',
      labelNames: ['function'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [fn, n] of upgraded()) this.set({ function: fn }, n);
      },
    });
  const { asyncQueue } = sources;
  if (asyncQueue)
    new Gauge({
      name: 'nimbus_async_queue_depth',
      help: 'Async invocations per function by state: queued (waiting to run), running, dead (in the dead-letter queue)',
      labelNames: ['function', 'state'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [fn, counts] of await asyncQueue())
          for (const state of ['queued', 'running', 'dead']) this.set({ function: fn, state }, counts[state] ?? 0);
      },
    });
  const { autoscale } = sources;
  if (autoscale) registerAutoscaleGauges(registry, autoscale);
  const perRevision = (
    name: string,
    help: string,
    value: (i: InstanceInfo & { usage?: ResourceSample }) => number | undefined,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['function', 'revision'],
      registers: [registry],
      collect() {
        this.reset();
        for (const i of sources.instances()) {
          const v = value(i);
          if (v !== undefined) this.inc({ function: i.function, revision: i.revision }, v);
        }
      },
    });
  perRevision(
    'nimbus_instance_cpu_percent',
    'CPU use of live instances over the last second, percent of one core, summed',
    (i) => i.usage?.cpuPercent,
  );
  perRevision('nimbus_instance_memory_bytes', 'Memory in use by live instances, summed', (i) => i.usage?.memoryBytes);
  perRevision('nimbus_instance_inflight', 'Requests in flight inside instances, summed', (i) => i.inFlight);
  new Gauge({
    name: 'nimbus_instances',
    help: 'Live instances by state',
    labelNames: ['function', 'revision', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const i of sources.instances()) this.inc({ function: i.function, revision: i.revision, state: i.state });
    },
  });

  return {
    contentType: registry.contentType,
    onInvocation(r) {
      const revision = r.revision ?? '';
      // Unknown functions are not counted per name: any URL would otherwise make a new series.
      if (r.error === 'NIMBUS_ERR_FUNCTION_NOT_FOUND') {
        errors.inc({ function: '', kind: 'platform', code: r.error });
        return;
      }
      const series = seriesOf(r.function, revision);
      const statusClass = Math.floor(r.status / 100);
      const index = statusClass * 2 + (r.cold ? 1 : 0);
      let counter = series.invocations[index];
      if (!counter) {
        counter = invocations.series({
          function: r.function,
          revision,
          status: `${statusClass}xx`,
          cold: String(r.cold),
        });
        series.invocations[index] = counter;
      }
      counter.value++;
      if (r.status === 101) {
        series.connection ??= connectionDuration.series({ function: r.function, revision });
        connectionDuration.observe(series.connection, r.durationMs / 1000);
      } else duration.observe(series.duration, r.durationMs / 1000);
      if (r.error) errors.inc({ function: r.function, kind: 'platform', code: r.error });
      else if (r.status >= 500) errors.inc({ function: r.function, kind: 'function', code: '' });
    },
    onStart(e) {
      const mode = e.mode ?? 'spawn';
      coldStarts.inc({ function: e.function, revision: e.revision, mode, outcome: e.ok ? 'ready' : 'failed' });
      if (e.ok) coldStartDuration.observe({ function: e.function, mode }, e.durationMs / 1000);
    },
    render: () => registry.metrics(),
  };
}

/** The autoscaler's gauges, per revision: what it wants, whether it panics, what it sees. */
function registerAutoscaleGauges(registry: Registry, autoscale: () => ScaleView[]): void {
  const gauge = (name: string, help: string, value: (v: ScaleView) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['function', 'revision'],
      registers: [registry],
      collect() {
        this.reset();
        for (const v of autoscale()) {
          const n = value(v);
          if (n !== null) this.set({ function: v.function, revision: v.revision }, n);
        }
      },
    });
  gauge('nimbus_autoscaler_desired_instances', 'Instances the autoscaler wants for the revision', (v) => v.desired);
  gauge('nimbus_autoscaler_ready_instances', 'Instances ready to serve (not starting, not draining)', (v) => v.ready);
  gauge('nimbus_autoscaler_panic', '1 while the autoscaler is in panic mode', (v) => (v.panic ? 1 : 0));
  gauge(
    'nimbus_autoscaler_stable_concurrency',
    'Requests in flight or held, averaged over the stable window',
    (v) => v.observed.concurrency.stable,
  );
  gauge(
    'nimbus_autoscaler_panic_concurrency',
    'Requests in flight or held, averaged over the panic window',
    (v) => v.observed.concurrency.panic,
  );
  gauge('nimbus_autoscaler_stable_rps', 'Requests per second over the stable window', (v) => v.observed.rps.stable);
}
