import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { AbortLike } from '../../core/abort.js';
import { NimbusError } from '../../core/errors.js';
import { type BodyControl, createLazyResponse, PushedBody, type RawHeaders } from '../channel/index.js';
import { requestHead } from '../channel/request-head.js';
import { ACK_STEP, FrameDecoder, FrameType, FrameWriter, Outbound, PREFACE } from '../guest/framing.js';
import type { Channel } from './channel.js';
import { openTunnel } from './tunnel.js';

// Statuses whose Response must have a null body (the constructor throws otherwise).
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
/** Response bytes buffered ahead of the reader before the guest stops getting credit. */
const BODY_HIGH_WATER = 64 * 1024;

/**
 * One request in flight on the connection; also its response body's flow control (a class, so a
 * request costs no closures for it).
 */
class Stream implements BodyControl {
  /** Set once the response head came. */
  body: PushedBody | null | undefined = undefined;
  /** Response bytes received and not yet acknowledged. */
  unacked = 0;
  /** The reader paused the body: no acknowledgements until it resumes. */
  paused = false;
  /** The request body being sent, with its sending half. */
  source?: Readable;
  out?: Outbound;
  signal?: AbortLike;
  onAbort?: () => void;

  constructor(
    readonly connection: Connection,
    readonly id: number,
    readonly method: string,
    readonly resolve: (response: Response) => void,
    readonly reject: (err: unknown) => void,
  ) {}

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.connection.acknowledge(this);
  }

  abort(reason: Error): void {
    this.connection.cancel(this, reason);
  }
}

/**
 * The framed channel to one instance (guest/framing.ts): one Unix-socket connection multiplexing
 * every request as a stream, all frames of an event-loop turn in one write. Same contract as the
 * HTTP channel: a lazy Response over a PushedBody, INSTANCE_CRASHED when the connection fails or
 * drops (before the answer: the promise rejects; after: the body errors), the abort reason when
 * the caller aborts (the guest gets CANCEL and aborts the request's signal). The connection is
 * made on the first request (the provider creates the channel before the guest listens) and
 * again after it dropped.
 */
export function createFramedChannel(socketPath: string, instanceId: string): Channel {
  let connection: Connection | undefined;
  let closed = false;
  const crashed = (detail: string, cause?: unknown) =>
    new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${instanceId} ${detail}`, { cause });

  return {
    fetch(request, signal) {
      if (closed) return Promise.reject(crashed('is not running'));
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (!connection || connection.dead) connection = new Connection(socketPath, crashed);
      return connection.fetch(request, signal);
    },
    async close() {
      closed = true;
      connection?.destroy();
    },
    tunnel: () => (closed ? Promise.reject(crashed('is not running')) : openTunnel(socketPath, instanceId)),
  };
}

class Connection {
  dead = false;
  readonly #socket: Socket;
  readonly #writer: FrameWriter;
  readonly #streams = new Map<number, Stream>();
  readonly #crashed: (detail: string, cause?: unknown) => Error;
  #nextId = 1;

  constructor(socketPath: string, crashed: (detail: string, cause?: unknown) => Error) {
    this.#crashed = crashed;
    const socket = connect(socketPath);
    this.#socket = socket;
    this.#writer = new FrameWriter(socket);
    this.#writer.raw(PREFACE);
    const decoder = new FrameDecoder((type, id, payload) => this.#onFrame(type, id, payload));
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    let error: Error | undefined;
    socket.on('error', (err) => {
      error = err;
    });
    socket.once('close', () => this.#drop(error?.message ?? 'the connection closed', error));
  }

  destroy(): void {
    this.#socket.destroy();
  }

  fetch(request: Request, signal: AbortLike | undefined): Promise<Response> {
    const head = requestHead(request);
    const id = this.#nextId;
    this.#nextId = id >= 0x7fffffff ? 1 : id + 1;
    return new Promise<Response>((resolve, reject) => {
      const stream = new Stream(this, id, head.method, resolve, reject);
      this.#streams.set(id, stream);
      this.#writer.frame(
        FrameType.RequestHead,
        id,
        JSON.stringify([head.method, head.path, head.body ? 1 : 0, head.headers]),
      );
      if (head.body) this.#sendBody(stream, head.body);
      if (signal) {
        stream.signal = signal;
        stream.onAbort = () => this.cancel(stream, signal.reason);
        signal.addEventListener('abort', stream.onAbort, { once: true });
      }
    });
  }

  /** Sends a request body within the guest's credit, pausing the source while it has none. */
  #sendBody(stream: Stream, source: Readable): void {
    const out = new Outbound(this.#writer, stream.id, FrameType.RequestData, FrameType.RequestEnd);
    stream.source = source;
    stream.out = out;
    const resume = () => source.resume();
    source.on('data', (chunk: Buffer) => {
      if (!out.send(chunk)) {
        source.pause();
        out.whenWritable(resume);
      }
    });
    source.once('end', () => out.end());
    source.once('error', (err) => {
      // The caller's body failed (e.g. over the gateway's size limit): the request is over.
      if (this.#streams.get(stream.id) !== stream) return;
      this.#writer.frame(FrameType.Cancel, stream.id);
      this.#finish(stream, err);
    });
  }

  #onFrame(type: number, id: number, payload: Buffer): void {
    const stream = this.#streams.get(id);
    if (!stream) return;
    switch (type) {
      case FrameType.ResponseHead:
        this.#onHead(stream, payload);
        break;
      case FrameType.ResponseData:
        stream.body?.push(payload);
        stream.unacked += payload.length;
        if (!stream.paused && stream.unacked >= ACK_STEP) this.#ack(stream);
        break;
      case FrameType.ResponseEnd:
        stream.body?.end();
        this.#finish(stream);
        break;
      case FrameType.Error: {
        const phase = stream.body === undefined ? 'before answering' : 'while streaming its answer';
        this.#finish(stream, this.#crashed(`failed ${phase}: ${payload.toString('utf8')}`));
        break;
      }
      case FrameType.Window:
        stream.out?.grant(payload.readUInt32BE(0));
        break;
    }
  }

  #onHead(stream: Stream, payload: Buffer): void {
    const [status, flat] = JSON.parse(payload.toString('utf8')) as [number, string[]];
    const headers: RawHeaders = {};
    for (let i = 0; i < flat.length; i += 2) {
      const key = flat[i]!.toLowerCase();
      if (key === 'connection' || key === 'keep-alive' || key === 'transfer-encoding') continue;
      const prev = headers[key];
      if (prev === undefined) headers[key] = flat[i + 1]!;
      else if (Array.isArray(prev)) prev.push(flat[i + 1]!);
      else headers[key] = [prev, flat[i + 1]!];
    }
    let body: PushedBody | null = null;
    if (!NULL_BODY.has(status) && stream.method !== 'HEAD') {
      body = new PushedBody(BODY_HIGH_WATER);
      body.setControl(stream);
    }
    stream.body = body;
    stream.resolve(createLazyResponse({ status, headers, body }));
  }

  /** The reader resumed: acknowledge what it buffered meanwhile. */
  acknowledge(stream: Stream): void {
    if (stream.unacked > 0 && this.#streams.get(stream.id) === stream) this.#ack(stream);
  }

  #ack(stream: Stream): void {
    this.#writer.window(stream.id, stream.unacked);
    stream.unacked = 0;
  }

  /** The caller gave up: tell the guest, fail the stream with `reason`. */
  cancel(stream: Stream, reason: unknown): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#writer.frame(FrameType.Cancel, stream.id);
    this.#finish(stream, reason);
  }

  /** Ends a stream: with `err`, its promise rejects (no head yet) or its body errors. */
  #finish(stream: Stream, err?: unknown): void {
    this.#streams.delete(stream.id);
    if (stream.onAbort) stream.signal!.removeEventListener('abort', stream.onAbort);
    stream.out?.close();
    const source = stream.source;
    if (source && !source.readableEnded) {
      // The answer is over before the request body: let the rest of it flow away.
      source.removeAllListeners('data');
      source.on('error', () => {});
      source.resume();
    }
    if (err === undefined) return;
    if (stream.body === undefined) stream.reject(err);
    else stream.body?.fail(err as Error);
  }

  /** The connection is gone: every open stream fails INSTANCE_CRASHED. */
  #drop(detail: string, cause?: unknown): void {
    this.dead = true;
    for (const stream of [...this.#streams.values()]) {
      const aborted = stream.signal?.aborted;
      const phase = stream.body === undefined ? 'before answering' : 'while streaming its answer';
      this.#finish(stream, aborted ? stream.signal!.reason : this.#crashed(`failed ${phase}: ${detail}`, cause));
    }
  }
}
