import { type Context, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { formatTraceparent, newTraceContext, parseTraceparent } from '../core/trace-context.js';
import type { GatewayTracer, RequestTrace } from '../gateway/gateway.js';

/** Where spans go: an OTLP/HTTP endpoint (`…/v1/traces` is appended unless the URL has it). */
export interface TracingOptions {
  /** Base URL of an OTLP/HTTP receiver, e.g. http://127.0.0.1:4318. */
  endpoint: string;
  /** Time between batch exports. Default 1000 ms. */
  exportDelayMs?: number;
  /** Replaces the OTLP exporter (tests). */
  exporter?: SpanExporter;
}

/**
 * The gateway's tracer plus the instance manager's start events (for cold-start spans), backed by
 * the OpenTelemetry SDK. `shutdown` exports what is still buffered.
 */
export interface NodeTracer extends GatewayTracer {
  /** `span`: another root span than `gateway NAME` (e.g. an async attempt: `async NAME`, consumer). */
  start(name: string, traceparent: string | undefined, span?: SpanOptions): RequestTrace;
  onStart(event: { id: string; ok: boolean; durationMs: number }): void;
  shutdown(): Promise<void>;
}

/** The root span of a traced unit of work that is not a gateway request. */
export interface SpanOptions {
  name: string;
  /** `consumer`: work taken from a queue (OpenTelemetry's messaging convention). Default `server`. */
  kind?: 'server' | 'consumer';
  attributes?: Record<string, string | number | boolean>;
}

interface ActiveTrace extends RequestTrace {
  span: ReturnType<Tracer['startSpan']>;
  /** Epoch ms at arrival, with sub-millisecond precision. */
  startEpoch: number;
}

/** `http://host:4318` → `http://host:4318/v1/traces`, the path the OTLP spec puts traces at. */
export function tracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
}

/**
 * Spans per request: `gateway` (SERVER, the whole request, child of the caller's span when a
 * valid `traceparent` came in), and as its children `activator wait` (asking for an instance
 * until one was leased; its child `cold start` when this request waited for a start) and
 * `function` (from the lease to the end of the response). They are made when the request ends,
 * with their real start and end times, so the request path only pays for one live span.
 */
export function createTracer(options: TracingOptions): NodeTracer {
  const exporter = options.exporter ?? new OTLPTraceExporter({ url: tracesUrl(options.endpoint) });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'nimbus' }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.exportDelayMs ?? 1000 })],
  });
  const tracer = provider.getTracer('nimbus');
  // Instance id → when its start ended and how long it took; read by the first request it served.
  const starts = new Map<string, { endEpoch: number; durationMs: number }>();
  const epochNow = () => performance.timeOrigin + performance.now();

  return {
    start(name, header, as) {
      const parent = parseTraceparent(header);
      const context: Context = parent
        ? trace.setSpanContext(ROOT_CONTEXT, {
            traceId: parent.traceId,
            spanId: parent.spanId,
            traceFlags: parent.sampled ? 1 : 0,
            isRemote: true,
          })
        : ROOT_CONTEXT;
      const startEpoch = epochNow();
      const span = tracer.startSpan(
        as?.name ?? `gateway ${name}`,
        {
          kind: as?.kind === 'consumer' ? SpanKind.CONSUMER : SpanKind.SERVER,
          startTime: startEpoch,
          attributes: { 'faas.name': name, ...as?.attributes },
        },
        context,
      );
      const sc = span.spanContext();
      // A span the sampler dropped still has ids; without a valid one, the function gets a fresh root.
      const ctx = trace.isSpanContextValid(sc)
        ? { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & 1) === 1 }
        : newTraceContext();
      const active: ActiveTrace = { traceId: ctx.traceId, traceparent: formatTraceparent(ctx), span, startEpoch };
      return active;
    },
    end(t, record) {
      const { span, startEpoch } = t as ActiveTrace;
      // Not sampled (the caller's flags, or OTEL_TRACES_SAMPLER): no child spans to make.
      if (!span.isRecording()) return span.end();
      const at = (ms: number) => startEpoch + ms;
      span.setAttributes({
        'faas.name': record.function,
        'faas.coldstart': record.cold,
        'http.response.status_code': record.status,
        'nimbus.request_id': record.requestId,
        ...(record.revision ? { 'nimbus.revision': record.revision } : {}),
        ...(record.instance ? { 'faas.instance': record.instance } : {}),
        ...(record.error ? { 'error.type': record.error } : {}),
      });
      if (record.error || record.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: record.error });
      const parent = trace.setSpan(ROOT_CONTEXT, span);
      if (record.wait) {
        const wait = tracer.startSpan('activator wait', { startTime: at(record.wait.fromMs) }, parent);
        const start = record.cold && record.instance ? starts.get(record.instance) : undefined;
        if (start) {
          starts.delete(record.instance!);
          const cold = tracer.startSpan(
            'cold start',
            { startTime: start.endEpoch - start.durationMs, attributes: { 'faas.instance': record.instance! } },
            trace.setSpan(ROOT_CONTEXT, wait),
          );
          cold.end(start.endEpoch);
        }
        wait.end(at(record.wait.toMs));
        if (record.instance) {
          const fn = tracer.startSpan('function', { startTime: at(record.wait.toMs) }, parent);
          if (record.status >= 500) fn.setStatus({ code: SpanStatusCode.ERROR });
          fn.end(at(record.durationMs));
        }
      }
      span.end(at(record.durationMs));
    },
    onStart(e) {
      if (!e.ok) return;
      starts.set(e.id, { endEpoch: epochNow(), durationMs: e.durationMs });
      // Starts nobody waited for (min scale, pre-warming) are never read: keep the map small.
      if (starts.size > 1000) starts.delete(starts.keys().next().value!);
    },
    shutdown: () => provider.shutdown(),
  };
}
