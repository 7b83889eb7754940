/**
 * The guest end of the framed channel (framing.ts): serves every stream of one connection through
 * the same handler as HTTP requests. Each stream gets a FramedRequest (a Readable with node:http's
 * method / url / headers / rawHeaders) and a FramedResponse (a Writable with writeHead and
 * headersSent), so the function framework and the watchdog run unchanged on either protocol.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeader, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { ACK_STEP, FrameDecoder, FrameType, FrameWriter, Outbound } from './framing.js';
import type { GuestRequest, GuestResponse } from './serve.js';

const noop = () => {};

/** One request's head and body, as the handler reads it. */
export class FramedRequest extends Readable implements GuestRequest {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly httpVersion = '1.1';
  #headers: IncomingHttpHeaders | undefined;
  #unacked = 0;
  readonly #ack: (bytes: number) => void;

  constructor(method: string, path: string, rawHeaders: string[], ack: (bytes: number) => void) {
    super();
    this.method = method;
    this.url = path;
    this.rawHeaders = rawHeaders;
    this.#ack = ack;
    // A cancelled request is destroyed with an error; whoever reads the body sees it.
    this.on('error', noop);
  }

  /** Lowercase names; repeated ones joined with ", " (set-cookie: an array), as node:http does. */
  get headers(): IncomingHttpHeaders {
    if (this.#headers) return this.#headers;
    const headers: IncomingHttpHeaders = {};
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const key = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      const prev = headers[key];
      if (key === 'set-cookie') headers[key] = [...((prev as string[] | undefined) ?? []), value];
      else headers[key] = prev === undefined ? value : `${prev}, ${value}`;
    }
    this.#headers = headers;
    return headers;
  }

  /** A DATA frame: pushed to the reader, acknowledged while the reader keeps up. */
  deliver(chunk: Buffer): void {
    this.#unacked += chunk.length;
    if (this.push(chunk) && this.#unacked >= ACK_STEP) this.#grant();
  }

  override _read(): void {
    // The reader wants more: acknowledge what it has taken (the sender waits for credit).
    if (this.#unacked > 0) this.#grant();
  }

  #grant(): void {
    this.#ack(this.#unacked);
    this.#unacked = 0;
  }
}

/** One request's answer: HEAD, DATA within the host's credit, END (or ERROR when destroyed). */
export class FramedResponse extends Writable implements GuestResponse {
  statusCode = 200;
  headersSent = false;
  /** Set when the host cancelled the stream: nothing more is sent. */
  cancelled = false;
  readonly #writer: FrameWriter;
  readonly #id: number;
  readonly #out: Outbound;
  readonly #onDone: () => void;

  constructor(writer: FrameWriter, id: number, onDone: () => void) {
    super({ highWaterMark: 64 * 1024 });
    this.#writer = writer;
    this.#id = id;
    this.#out = new Outbound(writer, id, FrameType.ResponseData, FrameType.ResponseEnd);
    this.#onDone = onDone;
    // node:http never throws a response's errors at the handler either.
    this.on('error', noop);
  }

  writeHead(
    status: number,
    textOrHeaders?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ): this {
    if (this.headersSent) throw new Error('Cannot write headers after they are sent');
    const given = typeof textOrHeaders === 'string' || textOrHeaders === undefined ? headers : textOrHeaders;
    this.statusCode = status;
    this.headersSent = true;
    if (!this.cancelled)
      this.#writer.frame(FrameType.ResponseHead, this.#id, JSON.stringify([status, flatHeaders(given)]));
    return this;
  }

  /** A WINDOW frame from the host. */
  grant(bytes: number): void {
    this.#out.grant(bytes);
  }

  /** The host gave up on this stream. */
  cancel(): void {
    this.cancelled = true;
    this.#out.close();
    this.destroy();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.headersSent) this.writeHead(this.statusCode);
    if (this.cancelled || this.#out.send(chunk)) callback();
    else this.#out.whenWritable(() => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.headersSent) this.writeHead(this.statusCode);
    // 'finish' (and the drain's in-flight count) waits until END is really queued for the socket.
    this.#out.end(() => {
      this.#onDone();
      callback();
    });
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.writableFinished && !this.cancelled) {
      this.#out.close();
      this.#writer.frame(FrameType.Error, this.#id, err?.message ?? 'The response was destroyed');
      this.#onDone();
    }
    callback(err);
  }
}

function flatHeaders(headers: OutgoingHttpHeaders | OutgoingHttpHeader[] | undefined): string[] {
  const flat: string[] = [];
  if (!headers) return flat;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) flat.push(String(headers[i]), String(headers[i + 1]));
    return flat;
  }
  for (const key in headers) {
    const value = headers[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) flat.push(key, v);
    else flat.push(key, String(value));
  }
  return flat;
}

/**
 * Serves one framed connection: `first` is what was read from it so far (starting with the
 * preface). Frames of unknown streams are ignored (a stream may end while its peer still sends).
 */
export function serveFramed(
  socket: Socket,
  first: Buffer,
  handle: (req: FramedRequest, res: FramedResponse) => void,
): FramedConnection {
  const writer = new FrameWriter(socket);
  const streams = new Map<number, { req: FramedRequest; res: FramedResponse }>();
  const decoder = new FrameDecoder(
    (type, id, payload) => {
      if (type === FrameType.RequestHead) {
        const [method, path, hasBody, headers] = JSON.parse(payload.toString('utf8')) as [
          string,
          string,
          number,
          string[],
        ];
        const req = new FramedRequest(method, path, headers, (bytes) => writer.window(id, bytes));
        if (!hasBody) req.push(null);
        const res = new FramedResponse(writer, id, () => streams.delete(id));
        streams.set(id, { req, res });
        handle(req, res);
        return;
      }
      const stream = streams.get(id);
      if (!stream) return;
      switch (type) {
        case FrameType.RequestData:
          stream.req.deliver(payload);
          break;
        case FrameType.RequestEnd:
          stream.req.push(null);
          break;
        case FrameType.Window:
          stream.res.grant(payload.readUInt32BE(0));
          break;
        case FrameType.Cancel:
          streams.delete(id);
          cancel(stream);
          break;
      }
    },
    { preface: true },
  );
  const cancel = ({ req, res }: { req: FramedRequest; res: FramedResponse }) => {
    if (!req.readableEnded) req.destroy(new Error('The request was cancelled'));
    res.cancel();
  };
  const onData = (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (err) {
      socket.destroy(err as Error);
    }
  };
  socket.on('data', onData);
  socket.on('error', noop);
  socket.once('close', () => {
    for (const stream of streams.values()) cancel(stream);
    streams.clear();
  });
  onData(first);
  return {
    close() {
      // Frames wait for the next turn: write them now, and wait until the socket took them.
      writer.flush();
      if (socket.destroyed) return Promise.resolve();
      return new Promise<void>((resolve) => socket.end(resolve));
    },
  };
}

/** A framed connection being served. */
export interface FramedConnection {
  /** Writes every queued frame, then ends the connection (before a graceful exit). */
  close(): Promise<void>;
}
