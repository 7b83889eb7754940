/**
 * The framed instance channel's wire format, shared by the host (process/channel-framed.ts) and
 * the guest (framed-server.ts); node builtins only, so the guest bundle can hold it.
 *
 * One Unix-socket connection carries many requests as streams. The host opens it with PREFACE
 * (its first byte, 0, starts no HTTP request, so the guest tells the protocols apart on one
 * socket), then both sides send frames: `[u32 payload length][u32 stream id][u8 type][payload]`.
 * Every frame queued in one event-loop turn leaves in one socket write (FrameWriter): with many
 * requests in flight, the syscall per request that HTTP/1.1 needs (one connection each) becomes
 * one per turn. Bodies are flow-controlled per stream by credit (WINDOW frames, HTTP/2-style), so
 * a slow reader bounds what its peer buffers; the socket's own back-pressure pauses every sender.
 */
import type { Socket } from 'node:net';

/** What the host writes first on a framed connection. */
export const PREFACE = Buffer.from('\0NIMBUS-FRAMED/1\n', 'latin1');
export const HEADER_BYTES = 9;
/** Largest payload accepted; a bigger length means the peer is not speaking this protocol. */
export const MAX_PAYLOAD = 16 * 1024 * 1024;
/** Body bytes a sender may have unacknowledged per stream (HTTP/2's default is 64 KB). */
export const INITIAL_WINDOW = 256 * 1024;
/** Bodies are acknowledged in steps of this many bytes (fewer WINDOW frames). */
export const ACK_STEP = INITIAL_WINDOW / 4;

export const FrameType = {
  /** host → guest, JSON `[method, path+query, hasBody 0|1, [name, value, …]]` (`host` first). */
  RequestHead: 1,
  RequestData: 2,
  RequestEnd: 3,
  /** guest → host, JSON `[status, [name, value, …]]`. */
  ResponseHead: 4,
  ResponseData: 5,
  ResponseEnd: 6,
  /** guest → host: the answer failed after its head (payload: a message). */
  Error: 7,
  /** host → guest: the caller gave up (client gone, timeout); the guest aborts the request. */
  Cancel: 8,
  /** Either way: u32 more body bytes the sender of this frame is ready to receive on the stream. */
  Window: 9,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Payloads at least this big are written by reference rather than copied into the batch. */
const COPY_LIMIT = 4096;
const SLAB_BYTES = 64 * 1024;

/**
 * Queues frames and writes everything queued in one event-loop turn with one socket write (a
 * `setImmediate` flush runs after the turn's I/O callbacks, so all requests read in one poll are
 * batched). Small frames are packed into a shared slab; large payloads are passed by reference
 * (cork/uncork makes that one writev).
 */
export class FrameWriter {
  readonly #socket: Socket;
  #slab = Buffer.allocUnsafe(SLAB_BYTES);
  /** Start of the slab bytes not yet handed to the socket. */
  #start = 0;
  #end = 0;
  #pieces: Buffer[] = [];
  #scheduled = false;
  #blocked = false;
  #drainWaiters: (() => void)[] = [];
  readonly #flush = () => this.flush();

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('drain', () => {
      this.#blocked = false;
      for (const waiter of this.#drainWaiters.splice(0)) waiter();
    });
  }

  /** True while the socket's buffer is full: senders should wait for `onDrain`. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** Calls `callback` once the socket drained (at once when it is not blocked). */
  onDrain(callback: () => void): void {
    if (this.#blocked) this.#drainWaiters.push(callback);
    else callback();
  }

  /** Raw bytes (the preface). */
  raw(bytes: Buffer): void {
    this.#cut();
    this.#pieces.push(bytes);
    this.#schedule();
  }

  frame(type: FrameType, stream: number, payload?: Buffer | string): void {
    if (typeof payload === 'string') {
      this.#room(HEADER_BYTES + payload.length * 3);
      const length = this.#slab.write(payload, this.#end + HEADER_BYTES, 'utf8');
      this.#header(type, stream, length);
      this.#end += length;
    } else if (payload && payload.length >= COPY_LIMIT) {
      this.#room(HEADER_BYTES);
      this.#header(type, stream, payload.length);
      this.#cut();
      this.#pieces.push(payload);
    } else {
      const length = payload?.length ?? 0;
      this.#room(HEADER_BYTES + length);
      this.#header(type, stream, length);
      if (payload) this.#end += payload.copy(this.#slab, this.#end);
    }
    this.#schedule();
  }

  /** A WINDOW frame granting `bytes`. */
  window(stream: number, bytes: number): void {
    this.#room(HEADER_BYTES + 4);
    this.#header(FrameType.Window, stream, 4);
    this.#slab.writeUInt32BE(bytes, this.#end);
    this.#end += 4;
    this.#schedule();
  }

  /** Writes what is queued now (normally called on the next turn). */
  flush(): void {
    this.#scheduled = false;
    this.#cut();
    const pieces = this.#pieces;
    if (pieces.length === 0 || this.#socket.destroyed) {
      this.#pieces = [];
      return;
    }
    this.#pieces = [];
    let more: boolean;
    if (pieces.length === 1) more = this.#socket.write(pieces[0]!);
    else {
      this.#socket.cork();
      more = true;
      for (const piece of pieces) more = this.#socket.write(piece) && more;
      this.#socket.uncork();
    }
    if (!more) this.#blocked = true;
  }

  #header(type: FrameType, stream: number, length: number): void {
    const slab = this.#slab;
    const at = this.#end;
    slab.writeUInt32BE(length, at);
    slab.writeUInt32BE(stream, at + 4);
    slab[at + 8] = type;
    this.#end = at + HEADER_BYTES;
  }

  /** Makes room for `bytes` in the slab (a new slab when it is full; handed-out bytes stay intact). */
  #room(bytes: number): void {
    if (this.#end + bytes <= this.#slab.length) return;
    this.#cut();
    this.#slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, bytes));
    this.#start = 0;
    this.#end = 0;
  }

  /** Hands the slab bytes written so far to the piece list. */
  #cut(): void {
    if (this.#end === this.#start) return;
    this.#pieces.push(this.#slab.subarray(this.#start, this.#end));
    this.#start = this.#end;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }
}

/** Error for bytes that are not this protocol. */
export class FramingError extends Error {
  override name = 'FramingError';
}

/**
 * Splits a byte stream into frames, whatever the chunking: `onFrame` gets each frame as soon as
 * it is complete; payloads are views into the received chunks (no copy when a frame lies in one).
 * With `preface`, the stream must start with PREFACE. `push` throws FramingError on bad input.
 */
export class FrameDecoder {
  readonly #onFrame: (type: number, stream: number, payload: Buffer) => void;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #need = 0;
  #preface: boolean;

  constructor(onFrame: (type: number, stream: number, payload: Buffer) => void, options: { preface?: boolean } = {}) {
    this.#onFrame = onFrame;
    this.#preface = options.preface ?? false;
    if (this.#preface) this.#need = PREFACE.length;
  }

  push(chunk: Buffer): void {
    if (this.#heldBytes > 0) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      if (this.#heldBytes < this.#need) return;
      chunk = Buffer.concat(this.#held, this.#heldBytes);
      this.#held = [];
      this.#heldBytes = 0;
    }
    let at = 0;
    if (this.#preface) {
      if (chunk.length < PREFACE.length) {
        this.#hold(chunk, PREFACE.length);
        return;
      }
      if (!chunk.subarray(0, PREFACE.length).equals(PREFACE)) throw new FramingError('Bad preface');
      this.#preface = false;
      at = PREFACE.length;
    }
    const end = chunk.length;
    while (end - at >= HEADER_BYTES) {
      const length = chunk.readUInt32BE(at);
      if (length > MAX_PAYLOAD) throw new FramingError(`Frame of ${length} bytes is over the limit`);
      const next = at + HEADER_BYTES + length;
      if (next > end) break;
      this.#onFrame(chunk[at + 8]!, chunk.readUInt32BE(at + 4), chunk.subarray(at + HEADER_BYTES, next));
      at = next;
    }
    if (at === end) return;
    const rest = chunk.subarray(at);
    this.#hold(rest, rest.length >= HEADER_BYTES ? HEADER_BYTES + rest.readUInt32BE(0) : HEADER_BYTES);
  }

  #hold(rest: Buffer, need: number): void {
    this.#held = [rest];
    this.#heldBytes = rest.length;
    this.#need = need;
  }
}

/**
 * The sending half of one stream's body: sends DATA frames within the credit the peer granted,
 * splits chunks larger than it, queues the rest until a WINDOW frame (`grant`) comes.
 */
export class Outbound {
  #credit = INITIAL_WINDOW;
  #queue: Buffer[] = [];
  #ending = false;
  #done = false;
  #waiter: (() => void) | undefined;
  #sent: (() => void) | undefined;
  readonly #writer: FrameWriter;
  readonly #stream: number;
  readonly #data: FrameType;
  readonly #endType: FrameType;

  constructor(writer: FrameWriter, stream: number, data: FrameType, end: FrameType) {
    this.#writer = writer;
    this.#stream = stream;
    this.#data = data;
    this.#endType = end;
  }

  /** Sends or queues `chunk`; false when the sender should wait (`whenWritable`). */
  send(chunk: Buffer): boolean {
    if (this.#done || this.#ending) return false;
    if (this.#queue.length > 0) this.#queue.push(chunk);
    else {
      const rest = this.#sendSome(chunk);
      if (rest) this.#queue.push(rest);
    }
    return this.writable;
  }

  /** Sends END after whatever is queued; `sent` is called once it is. */
  end(sent?: () => void): void {
    if (this.#done || this.#ending) return;
    this.#ending = true;
    this.#sent = sent;
    this.#pump();
  }

  /** Nothing more is sent (the stream was cancelled or failed). */
  close(): void {
    this.#done = true;
    this.#queue = [];
    this.#waiter = undefined;
    this.#sent = undefined;
  }

  /** Credit from a WINDOW frame. */
  grant(bytes: number): void {
    this.#credit += bytes;
    this.#pump();
  }

  /** True when nothing is queued and the socket takes more. */
  get writable(): boolean {
    return this.#queue.length === 0 && !this.#writer.blocked;
  }

  /** Bytes waiting for credit. */
  get queuedBytes(): number {
    let n = 0;
    for (const chunk of this.#queue) n += chunk.length;
    return n;
  }

  /** Calls `callback` once, when `writable` again (at once if it is). */
  whenWritable(callback: () => void): void {
    if (this.#queue.length > 0) this.#waiter = callback;
    else this.#writer.onDrain(callback);
  }

  /** Sends as much of `chunk` as the credit allows; returns the rest. */
  #sendSome(chunk: Buffer): Buffer | undefined {
    if (chunk.length <= this.#credit) {
      this.#credit -= chunk.length;
      this.#writer.frame(this.#data, this.#stream, chunk);
      return undefined;
    }
    if (this.#credit > 0) {
      this.#writer.frame(this.#data, this.#stream, chunk.subarray(0, this.#credit));
      chunk = chunk.subarray(this.#credit);
      this.#credit = 0;
    }
    return chunk;
  }

  #pump(): void {
    if (this.#done) return;
    while (this.#queue.length > 0 && this.#credit > 0) {
      const rest = this.#sendSome(this.#queue[0]!);
      if (rest) this.#queue[0] = rest;
      else this.#queue.shift();
    }
    if (this.#queue.length > 0) return;
    if (this.#ending) {
      this.#done = true;
      this.#writer.frame(this.#endType, this.#stream);
      this.#sent?.();
    }
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) this.#writer.onDrain(waiter);
  }
}
