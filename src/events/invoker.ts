import { Readable } from 'node:stream';
import type { Clock } from '../core/clock.js';
import { NimbusError, PLATFORM_ERROR_HEADER, toNimbusError } from '../core/errors.js';
import { TRACEPARENT_HEADER } from '../core/trace-context.js';
import type { InvocationRecord, RequestTrace } from '../gateway/gateway.js';
import type { Resolver } from '../gateway/resolver.js';
import type { InstanceManager, Lease } from '../instances/index.js';
import {
  createLazyRequest,
  type PushedBody,
  type RawHeaders,
  takeLazyResponseParts,
} from '../runtime/channel/index.js';
import { DEADLINE_HEADER, REQUEST_ID_HEADER } from '../runtime/types.js';

/** A stored request, replayed against a function. */
export interface InvocationRequest {
  method: string;
  /** What the function sees: `/path?query`. */
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

/** What one attempt produced. Platform failures are answers too (with `platformError` set), never exceptions. */
export interface InvocationResponse {
  status: number;
  headers: Record<string, string>;
  /** At most `maxBodyBytes`; `truncated` says whether more was read and dropped. */
  body: Buffer;
  truncated: boolean;
  /** The catalogue code when the platform made the answer (timeout, crash, unknown function…). */
  platformError?: string;
  revision?: string;
  cold: boolean;
  durationMs: number;
}

/** Calls a function the way the gateway does, for work that has no HTTP client waiting on it. */
export interface Invoker {
  /**
   * `tag`: run the revision this tag (or revision id) names, as `/fn/NAME@TAG/` does. `attempt`
   * (1-based) goes on the attempt's span when tracing is on.
   */
  invoke(
    name: string,
    request: InvocationRequest,
    options?: { requestId?: string; tag?: string; attempt?: number },
  ): Promise<InvocationResponse>;
}

/**
 * What the invoker asks of a tracer (src/observe/tracing.ts's NodeTracer): a root span per attempt,
 * child of the stored `traceparent`, ended with the attempt's record.
 */
export interface AttemptTracer {
  start(
    name: string,
    traceparent: string | undefined,
    span: { name: string; kind: 'consumer'; attributes: Record<string, string | number | boolean> },
  ): RequestTrace;
  end(trace: RequestTrace, record: InvocationRecord): void;
}

export interface InvokerOptions {
  resolver: Resolver;
  manager: InstanceManager;
  clock: Clock;
  /** Bytes of the response body kept. Default 256 KB. */
  maxBodyBytes?: number;
  /**
   * Gives each attempt its own span (`async NAME`, kind consumer, with `nimbus.attempt`), child of
   * the invocation's stored `traceparent`; the function is told that span as its parent, and the
   * wait / cold start / function spans hang under it as under the gateway's.
   */
  tracer?: AttemptTracer;
  /**
   * Called with each finished attempt's record, as the gateway's onInvocation is for requests: usage
   * metering and canary judging count async and trigger-driven work too.
   */
  onAttempt?: (record: InvocationRecord) => void;
}

/**
 * resolve → acquire (wakes a function scaled to zero) → instance.fetch → release, with the
 * function's timeout aborting the attempt and recycling the instance, as src/gateway/gateway.ts
 * does for synchronous traffic.
 */
export function createInvoker(options: InvokerOptions): Invoker {
  const { resolver, manager, clock } = options;
  const maxBody = options.maxBodyBytes ?? 256 * 1024;

  /** One attempt; `marks` gets when the slot was asked for and leased, and by which instance. */
  async function attempt(
    name: string,
    request: InvocationRequest,
    opts: { requestId?: string; tag?: string },
    marks: { askedMs?: number; leasedMs?: number; instance?: string },
    traceparent?: string,
  ): Promise<InvocationResponse> {
    const started = performance.now();
    const controller = new AbortController();
    let cancelTimer = () => {};
    let lease: Lease | undefined;
    let revision: string | undefined;
    let timedOut = false;
    try {
      const plan = resolver.resolve(name, opts.tag);
      if (!plan) throw notFound(resolver, name, opts.tag);
      revision = plan.revision;
      const timeoutMs = plan.spec.timeoutMs;
      const deadline = clock.now() + timeoutMs;
      cancelTimer = clock.setTimer(() => {
        timedOut = true;
        controller.abort(
          new NimbusError(
            'NIMBUS_ERR_TIMEOUT',
            `Function ${name} did not answer within its timeout of ${timeoutMs / 1000} s`,
          ),
        );
      }, timeoutMs);
      marks.askedMs = performance.now() - started;
      lease = await manager.acquire(plan, controller.signal);
      marks.leasedMs = performance.now() - started;
      marks.instance = lease.instance.id;
      // Lazy web objects, as the gateway uses: no web streams for a body that is bytes in hand.
      const headers: string[] = [];
      for (const [k, v] of Object.entries(request.headers)) {
        const key = k.toLowerCase();
        if (key === REQUEST_ID_HEADER || key === DEADLINE_HEADER) continue;
        if (traceparent && key === TRACEPARENT_HEADER) continue;
        headers.push(k, v);
      }
      if (traceparent) headers.push(TRACEPARENT_HEADER, traceparent);
      if (opts.requestId) headers.push(REQUEST_ID_HEADER, opts.requestId);
      headers.push(DEADLINE_HEADER, String(deadline));
      const hasBody = request.method !== 'GET' && request.method !== 'HEAD' && request.body;
      const signal = controller.signal;
      const response = await lease.instance.fetch(
        createLazyRequest({
          method: request.method,
          host: request.headers.host ?? request.headers.Host ?? 'localhost',
          path: request.path,
          headers,
          body: hasBody ? Readable.from([Buffer.from(request.body!)]) : null,
          signal: () => signal,
        }),
        { signal },
      );
      const parts = takeLazyResponseParts(response);
      const { body, truncated } = parts ? await readPushed(parts.body, maxBody) : await readBounded(response, maxBody);
      const responseHeaders = parts ? flatten(parts.headers) : Object.fromEntries(response.headers);
      const out: InvocationResponse = {
        status: parts?.status ?? response.status,
        headers: responseHeaders,
        body,
        truncated,
        revision,
        cold: lease.cold,
        durationMs: performance.now() - started,
      };
      const tag = responseHeaders[PLATFORM_ERROR_HEADER];
      if (tag) out.platformError = tag;
      return out;
    } catch (err) {
      const error = toNimbusError(controller.signal.aborted ? controller.signal.reason : err);
      const body = Buffer.from(JSON.stringify(error.toJSON()));
      return {
        status: error.status,
        headers: { 'content-type': 'application/json', [PLATFORM_ERROR_HEADER]: error.code },
        body,
        truncated: false,
        platformError: error.code,
        revision,
        cold: lease?.cold ?? false,
        durationMs: performance.now() - started,
      };
    } finally {
      cancelTimer();
      lease?.release({ recycle: timedOut });
    }
  }

  const { tracer, onAttempt } = options;
  const recordOf = (
    name: string,
    requestId: string | undefined,
    response: InvocationResponse,
    marks: { askedMs?: number; leasedMs?: number; instance?: string },
  ): InvocationRecord => ({
    requestId: requestId ?? '',
    function: name,
    status: response.status,
    durationMs: response.durationMs,
    cold: response.cold,
    // The answer is stored with the invocation, not sent to a caller.
    egressBytes: 0,
    ...(response.revision ? { revision: response.revision } : {}),
    ...(marks.instance ? { instance: marks.instance } : {}),
    ...(response.platformError ? { error: response.platformError } : {}),
    ...(marks.askedMs !== undefined
      ? { wait: { fromMs: marks.askedMs, toMs: marks.leasedMs ?? response.durationMs } }
      : {}),
  });
  return {
    async invoke(name, request, opts = {}) {
      const marks: { askedMs?: number; leasedMs?: number; instance?: string } = {};
      if (!tracer) {
        const response = await attempt(name, request, opts, marks);
        onAttempt?.(recordOf(name, opts.requestId, response, marks));
        return response;
      }
      const trace = tracer.start(name, request.headers[TRACEPARENT_HEADER], {
        name: `async ${name}`,
        kind: 'consumer',
        attributes: {
          'nimbus.attempt': opts.attempt ?? 1,
          ...(opts.tag !== undefined ? { 'nimbus.tag': opts.tag } : {}),
        },
      });
      const response = await attempt(name, request, opts, marks, trace.traceparent);
      const record = { ...recordOf(name, opts.requestId, response, marks), traceId: trace.traceId };
      tracer.end(trace, record);
      onAttempt?.(record);
      return response;
    },
  };
}

/** Which is gone: the function, or only the tag (removed since the invocation was queued). */
function notFound(resolver: Resolver, name: string, tag: string | undefined): NimbusError {
  if (tag !== undefined && resolver.resolve(name))
    return new NimbusError('NIMBUS_ERR_REVISION_NOT_FOUND', `Function ${name} has no tag or revision ${tag}`);
  return new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', `Function not found: ${name}`);
}

function flatten(raw: RawHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** readBounded for the channel's pushed body: the whole body is read, at most `max` bytes kept. */
function readPushed(pushed: PushedBody | null, max: number): Promise<{ body: Buffer; truncated: boolean }> {
  if (!pushed) return Promise.resolve({ body: Buffer.alloc(0), truncated: false });
  if (pushed.complete) {
    const all = pushed.takeAll();
    return Promise.resolve({ body: all.length > max ? all.subarray(0, max) : all, truncated: all.length > max });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let truncated = false;
    pushed.attach({
      write(chunk) {
        if (kept < max) {
          const part = chunk.subarray(0, max - kept);
          chunks.push(part);
          kept += part.length;
          if (part.length < chunk.length) truncated = true;
        } else if (chunk.length > 0) truncated = true;
        return true;
      },
      end: () => resolve({ body: Buffer.concat(chunks), truncated }),
      error: reject,
    });
  });
}

/** Reads the whole body (so the instance is free again) but keeps at most `max` bytes. */
async function readBounded(response: Response, max: number): Promise<{ body: Buffer; truncated: boolean }> {
  if (!response.body) return { body: Buffer.alloc(0), truncated: false };
  const chunks: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    if (kept >= max) {
      truncated = true;
      continue;
    }
    const part = Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(chunk.length, max - kept));
    if (part.length < chunk.length) truncated = true;
    chunks.push(Buffer.from(part));
    kept += part.length;
  }
  return { body: Buffer.concat(chunks), truncated };
}
