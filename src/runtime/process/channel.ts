import type { Socket } from 'node:net';
import { type Dispatcher, Pool } from 'undici';
import type { AbortLike } from '../../core/abort.js';
import { NimbusError } from '../../core/errors.js';
import { createLazyResponse, PushedBody } from '../channel/index.js';
import { requestHead } from '../channel/request-head.js';
import { createFramedChannel } from './channel-framed.js';
import { openTunnel } from './tunnel.js';

/** The host end of the hop to one instance's Unix socket. */
export interface Channel {
  /**
   * Sends `request` to the guest. Rejects INSTANCE_CRASHED when the connection fails or drops
   * before the answer (after it, the body stream errors with INSTANCE_CRASHED); rejects with
   * `signal.reason` when aborted.
   */
  fetch(request: Request, signal?: AbortLike): Promise<Response>;
  /** Closes every connection (in-flight requests fail). */
  close(): Promise<void>;
  /** A connection of its own to the guest, in plain HTTP/1.1, for a request that switches protocols. */
  tunnel(): Promise<Socket>;
}

// Statuses whose Response must have a null body (the constructor throws otherwise).
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
/** Response bytes buffered ahead of the reader before the socket is paused. */
const BODY_HIGH_WATER = 64 * 1024;

/** The protocols of the hop: `framed` (channel-framed.ts) or HTTP/1.1 (undici). */
export type ChannelProtocol = 'framed' | 'http';

/** Default protocol; NIMBUS_INSTANCE_CHANNEL=http|framed overrides it (the guest serves both). */
export const DEFAULT_CHANNEL: ChannelProtocol = 'framed';

/** The channel to one instance, over the protocol chosen by `protocol` (default: see above). */
export function createChannel(
  socketPath: string,
  instanceId: string,
  protocol: ChannelProtocol = channelFromEnv() ?? DEFAULT_CHANNEL,
): Channel {
  return protocol === 'framed'
    ? createFramedChannel(socketPath, instanceId)
    : createHttpChannel(socketPath, instanceId);
}

function channelFromEnv(): ChannelProtocol | undefined {
  const value = process.env.NIMBUS_INSTANCE_CHANNEL;
  return value === 'http' || value === 'framed' ? value : undefined;
}

/**
 * HTTP/1.1 keep-alive connections (undici's pool). A raw `pool.dispatch()` handler (bench/channel.ts: ~2x `undici.fetch` with a dispatcher). The
 * answer is a lazy Response over a PushedBody: the gateway writes it to its client with Node
 * streams, in one write when it is complete by then; other callers get a web stream on demand.
 */
export function createHttpChannel(socketPath: string, instanceId: string): Channel {
  // The guest never times out idle connections (keepAliveTimeout 0), so keep them long here too.
  const pool = new Pool('http://localhost', {
    connect: { socketPath },
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
  });
  let closed = false;
  const crashed = (detail: string, cause?: unknown) =>
    new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${instanceId} ${detail}`, { cause });

  function fetch(request: Request, signal?: AbortLike): Promise<Response> {
    if (closed) return Promise.reject(crashed('is not running'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const head = requestHead(request);
    const options: Dispatcher.DispatchOptions = { ...head, method: head.method as Dispatcher.HttpMethod };
    return new Promise<Response>((resolve, reject) => {
      let control: Dispatcher.DispatchController | undefined;
      let body: PushedBody | null = null;
      const onAbort = () => control?.abort(signal!.reason as Error);
      const done = () => signal?.removeEventListener('abort', onAbort);
      signal?.addEventListener('abort', onAbort, { once: true });
      pool.dispatch(options, {
        onRequestStart(c) {
          control = c;
          if (signal?.aborted) c.abort(signal.reason as Error);
        },
        onResponseStart(c, status, headers) {
          // Our hop's connection management is not part of the function's answer.
          delete headers.connection;
          delete headers['keep-alive'];
          delete headers['transfer-encoding'];
          if (!NULL_BODY.has(status) && options.method !== 'HEAD') {
            body = new PushedBody(BODY_HIGH_WATER);
            body.setControl(c);
          }
          resolve(createLazyResponse({ status, headers, body }));
        },
        onResponseData(_c, chunk) {
          body?.push(chunk);
        },
        onResponseEnd() {
          done();
          body?.end();
        },
        onResponseError(_c, err) {
          done();
          const reason = signal?.aborted
            ? (signal.reason as Error)
            : crashed(`failed ${body ? 'while streaming its answer' : 'before answering'}: ${err.message}`, err);
          if (body) body.fail(reason);
          else reject(reason);
        },
      });
    });
  }

  return {
    fetch,
    async close() {
      closed = true;
      await pool.destroy().catch(() => {});
    },
    tunnel: () => (closed ? Promise.reject(crashed('is not running')) : openTunnel(socketPath, instanceId)),
  };
}
