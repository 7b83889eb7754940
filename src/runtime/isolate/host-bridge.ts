/**
 * The host side of an isolate's boundary: the callbacks the prelude's console, timers, crypto
 * and fetch call (`__nimbus.bind`), each a narrow, copy-only door out of the isolate.
 */
import { randomFillSync } from 'node:crypto';
import ivm from 'isolated-vm';
import { type Dispatcher, fetch, Headers } from 'undici';
import { NimbusError } from '../../core/errors.js';
import { OutputLimiter } from '../process/lines.js';
import { createCryptoBridge } from './host-crypto.js';
import { createOutboundGuard, OutboundRefused } from './outbound-guard.js';

/** Longest console line kept; longer ones are cut (a runaway print must not flood the log store). */
const MAX_LINE = 16 * 1024;

/** Pending timers per isolate: a guard against a function flooding the node's timer list. */
const MAX_TIMERS = 10_000;

/**
 * What the bridge needs from its instance. Mutable: a spare isolate is bound before it has an
 * instance, and the instance fills these in when it takes the spare.
 */
export interface BridgeOptions {
  /** One console line (already split on newlines). */
  log(stream: 'stdout' | 'stderr', line: string, requestId?: string): void;
  /** Runs timer `id` inside the isolate (the bridge only keeps the host timers). */
  fire(id: number): void;
  /** Outbound fetch allowed (network: egress). */
  egress: boolean;
  /** Cap on an outbound response body, bytes. */
  bodyLimit: number;
  /** Bound on one outbound fetch, ms. */
  fetchTimeoutMs: number;
  /**
   * What outbound fetches connect through (outbound-guard.ts: no loopback or link-local but the
   * node's data plane). Default: a guard that refuses all of loopback.
   */
  dispatcher?: Dispatcher;
  /** The next chunk of a streamed request body (null at its end). */
  read(key: string): Promise<ArrayBuffer | null | { error: string }>;
}

/** The callbacks handed to `__nimbus.bind`, and `close` that cancels the timers it holds. */
export interface Bridge {
  args: unknown[];
  /** Clears every pending timer; later calls from the isolate are ignored. */
  close(): void;
}

export function createBridge(options: BridgeOptions): Bridge {
  const timers = new Map<number, NodeJS.Timeout>();
  const limiter = new OutputLimiter();
  let closed = false;
  const log = new ivm.Callback(
    (rawStream: unknown, rawLine: unknown, rawId?: unknown) => {
      if (closed) return;
      // Whatever the function did to its prelude, only strings leave this door.
      const stream = rawStream === 'stderr' ? 'stderr' : 'stdout';
      const line = String(rawLine);
      const requestId = typeof rawId === 'string' ? rawId : undefined;
      const cut = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}… (cut at ${MAX_LINE} characters)` : line;
      const dropped = limiter.takeDropped();
      if (dropped > 0) options.log(stream, `… ${dropped} lines dropped (output rate limit)`);
      if (limiter.take(cut.length)) options.log(stream, cut, requestId);
    },
    { ignored: true },
  );
  const timer = new ivm.Callback(
    (id: number, ms: number) => {
      if (closed) return;
      if (timers.size >= MAX_TIMERS) {
        options.log('stderr', `setTimeout/setInterval: more than ${MAX_TIMERS} pending timers, this one is dropped`);
        return;
      }
      // Ref'd (cleared when the instance ends): a request awaiting a timer has nothing else
      // keeping the event loop alive, the in-flight isolate call holds no handle.
      const handle = setTimeout(
        () => {
          timers.delete(id);
          if (!closed) options.fire(id);
        },
        Math.min(ms, 2 ** 31 - 1),
      );
      timers.set(id, handle);
    },
    { ignored: true },
  );
  const clearTimer = new ivm.Callback(
    (id: number) => {
      clearTimeout(timers.get(id));
      timers.delete(id);
    },
    { ignored: true },
  );
  const random = new ivm.Callback((n: number) => {
    const bytes = new Uint8Array(Math.min(65536, Math.max(0, n | 0)));
    randomFillSync(bytes);
    return new ivm.ExternalCopy(bytes.buffer).copyInto();
  });
  // A Reference, not a Callback: a Callback's result must be copyable as it is, and a promise is
  // not; the prelude applies this with `result: { promise: true }` and awaits the answer. Failures
  // come back as `{ error }` (the prelude throws them): a rejected promise handed to isolated-vm
  // also surfaces as an unhandled rejection in the node.
  const fetchOut = new ivm.Reference(
    async (method: string, url: string, headers: string[], body: ArrayBuffer | null): Promise<unknown> => {
      if (!options.egress) return { error: 'fetch: outbound requests need `network: egress` (this function has none)' };
      try {
        return await outbound(method, url, headers, body, options);
      } catch (err) {
        const refused = (err as { cause?: unknown }).cause;
        if (refused instanceof OutboundRefused) return { error: refused.message };
        const cause = (err as { cause?: { message?: string } }).cause?.message;
        return { error: `fetch failed: ${(err as Error).message}${cause ? ` (${cause})` : ''}` };
      }
    },
  );
  const read = new ivm.Reference(async (key: string) => {
    try {
      return await options.read(key);
    } catch (err) {
      return { error: `Reading the request body failed: ${(err as Error).message}` };
    }
  });
  const crypto = createCryptoBridge();
  return {
    args: [log, timer, clearTimer, random, fetchOut, read, crypto.subtle, crypto.free],
    close() {
      closed = true;
      crypto.close();
      for (const handle of timers.values()) clearTimeout(handle);
      timers.clear();
    },
  };
}

let fallbackGuard: Dispatcher | undefined;
/** The guard of bridges given none: refuses all of loopback (no data plane is known). */
function defaultGuard(): Dispatcher {
  fallbackGuard ??= createOutboundGuard().dispatcher;
  return fallbackGuard;
}

/** One outbound request for the isolate's `fetch`, answered whole (status, headers, bytes). */
async function outbound(
  method: string,
  url: string,
  flat: string[],
  body: ArrayBuffer | null,
  options: BridgeOptions,
): Promise<unknown> {
  const headers = new Headers();
  for (let i = 0; i < flat.length; i += 2) headers.append(flat[i], flat[i + 1]);
  const res = await fetch(url, {
    method,
    headers,
    body: body && method !== 'GET' && method !== 'HEAD' ? new Uint8Array(body) : undefined,
    signal: AbortSignal.timeout(options.fetchTimeoutMs),
    redirect: 'follow',
    dispatcher: options.dispatcher ?? defaultGuard(),
  });
  const length = Number(res.headers.get('content-length') ?? 0);
  if (length > options.bodyLimit) {
    await res.body?.cancel();
    throw new NimbusError(
      'NIMBUS_ERR_PAYLOAD_TOO_LARGE',
      `fetch: the response body exceeds ${options.bodyLimit} bytes`,
    );
  }
  const bytes = await res.arrayBuffer();
  if (bytes.byteLength > options.bodyLimit)
    throw new NimbusError(
      'NIMBUS_ERR_PAYLOAD_TOO_LARGE',
      `fetch: the response body exceeds ${options.bodyLimit} bytes`,
    );
  const out: string[] = [];
  res.headers.forEach((v, k) => {
    out.push(k, v);
  });
  return new ivm.ExternalCopy([res.status, res.statusText, out, bytes]).copyInto();
}
