/**
 * Counter and histogram families for the request path, kept as plain numbers and read by
 * prom-client's registry only when it is scraped. prom-client's own `inc` / `observe` validate and
 * hash the label object on every call (≈ 1 µs per request for the gateway's three metrics); here a
 * caller keeps the series it updates (one per function and revision) and an update is an add.
 * The exposition is prom-client's: these objects give the registry the same values its Counter
 * and Histogram would.
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

/** One labelled counter series: add to `value`. */
export interface CounterSeries {
  value: number;
}

/** One labelled histogram series: update it with `observe`. */
export interface HistogramSeries {
  /** Observations per bucket, not cumulative; the last one is over every bound (+Inf). */
  readonly counts: number[];
  sum: number;
  count: number;
}

interface Entry<S> {
  labels: Labels;
  series: S;
}

/** What prom-client's registry reads of a metric. */
interface ExportedValue {
  labels: Labels;
  sharedLabels?: Labels;
  value: number;
  metricName?: string;
}

abstract class Family<S> {
  readonly aggregator = 'sum';
  readonly #entries = new Map<string, Entry<S>>();
  abstract readonly type: string;

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    // The registry needs only name, help, type, aggregator and get(): see prom-client's Metric.
    registry.registerMetric(this as never);
  }

  /** The series of `labels` (made on first use, kept for good as prom-client keeps its own). */
  series(labels: Labels): S {
    const key = Object.values(labels).join('\0');
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { labels, series: this.create() };
      this.#entries.set(key, entry);
    }
    return entry.series;
  }

  protected abstract create(): S;
  protected abstract export(entry: Entry<S>, out: ExportedValue[]): void;

  /** As prom-client's getForPromString: label sets not yet merged (the registry formats them). */
  getForPromString() {
    const values: ExportedValue[] = [];
    for (const entry of this.#entries.values()) this.export(entry, values);
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** As prom-client's get (JSON): each value's labels merged. */
  get() {
    const data = this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, value, metricName }) => ({
        labels: { ...sharedLabels, ...labels },
        value,
        ...(metricName ? { metricName } : {}),
      })),
    };
  }

  reset(): void {
    this.#entries.clear();
  }
}

/** A counter family (prom-client's Counter exposition). */
export class CounterFamily extends Family<CounterSeries> {
  readonly type = 'counter';
  protected create(): CounterSeries {
    return { value: 0 };
  }
  protected export({ labels, series }: Entry<CounterSeries>, out: ExportedValue[]): void {
    out.push({ labels, value: series.value });
  }
}

/** A histogram family (prom-client's Histogram exposition: cumulative `_bucket`s, `_sum`, `_count`). */
export class HistogramFamily extends Family<HistogramSeries> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    registry: Registry,
    readonly bounds: readonly number[],
  ) {
    super(name, help, registry);
  }

  /** Adds one observation to `series`. */
  observe(series: HistogramSeries, value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    series.counts[i]!++;
    series.sum += value;
    series.count++;
  }

  protected create(): HistogramSeries {
    return { counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
  }

  protected export({ labels, series }: Entry<HistogramSeries>, out: ExportedValue[]): void {
    const bucket = `${this.name}_bucket`;
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += series.counts[i]!;
      out.push({
        labels: { le: this.bounds[i] as unknown as string },
        sharedLabels: labels,
        value: acc,
        metricName: bucket,
      });
    }
    out.push({ labels: { le: '+Inf' }, sharedLabels: labels, value: series.count, metricName: bucket });
    out.push({ labels: {}, sharedLabels: labels, value: series.sum, metricName: `${this.name}_sum` });
    out.push({ labels: {}, sharedLabels: labels, value: series.count, metricName: `${this.name}_count` });
  }
}
