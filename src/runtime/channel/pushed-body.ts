/** Where a pushed body's chunks go once a reader attaches. */
export interface BodySink {
  /** Takes one chunk; false asks the producer to pause until `PushedBody.resume()`. */
  write(chunk: Buffer): boolean;
  end(): void;
  error(err: Error): void;
}

/** The producer's flow control (an undici dispatch controller fits). */
export interface BodyControl {
  pause(): void;
  resume(): void;
  abort(reason: Error): void;
}

/** The sink of a body taken whole: later pushes (none normally) go nowhere. */
const TAKEN: BodySink = { write: () => true, end() {}, error() {} };

/**
 * A response body pushed by a producer (the channel's dispatch handler) and read by one consumer:
 * either a Node writable through `attach` (the gateway's fast path, no web stream), or a web
 * ReadableStream through `toWeb`. Chunks that arrive before a reader attaches are buffered up to
 * `highWaterMark` bytes, then the producer is paused. A body that already ended when the reader
 * comes can be taken whole (`complete` / `takeAll`), so a small answer goes out in one write.
 */
export class PushedBody {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #ended = false;
  #error: Error | undefined;
  #sink: BodySink | undefined;
  #control: BodyControl | undefined;
  #paused = false;
  readonly #highWaterMark: number;

  constructor(highWaterMark: number) {
    this.#highWaterMark = highWaterMark;
  }

  /** Producer: sets the flow control (may come after the first chunks). */
  setControl(control: BodyControl): void {
    this.#control = control;
    if (this.#paused) control.pause();
  }

  /** Producer: one chunk. */
  push(chunk: Buffer): void {
    if (this.#ended || this.#error) return;
    if (this.#sink) {
      if (!this.#sink.write(chunk)) this.#pause();
      return;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes >= this.#highWaterMark) this.#pause();
  }

  /** Producer: the body is complete. */
  end(): void {
    if (this.#ended || this.#error) return;
    this.#ended = true;
    this.#sink?.end();
  }

  /** Producer: the body failed. */
  fail(err: Error): void {
    if (this.#ended || this.#error) return;
    this.#error = err;
    this.#chunks = [];
    this.#sink?.error(err);
  }

  /** True when every chunk is here (and none was taken yet). */
  get complete(): boolean {
    return this.#ended && !this.#sink;
  }

  /** The whole body once `complete`, as one Buffer. */
  takeAll(): Buffer {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#sink = TAKEN;
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  /** Consumer: receives the buffered chunks now, then every later one. Only one consumer. */
  attach(sink: BodySink): void {
    if (this.#sink) throw new TypeError('The response body is already being read');
    this.#sink = sink;
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#bytes = 0;
    let more = true;
    for (const chunk of chunks) more = sink.write(chunk) && more;
    if (this.#error) sink.error(this.#error);
    else if (this.#ended) sink.end();
    else if (more) this.resume();
    else this.#pause();
  }

  /** Consumer: ready for more after a `write` returned false. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#control?.resume();
  }

  /** Consumer: not interested any more; the producer stops. */
  cancel(reason: Error): void {
    if (this.#ended || this.#error) return;
    this.#control?.abort(reason);
  }

  /** Consumer: the body as a web stream (back-pressure through the stream's queue). */
  toWeb(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.attach({
            write: (chunk) => {
              controller.enqueue(chunk);
              return (controller.desiredSize ?? 1) > 0;
            },
            end: () => controller.close(),
            error: (err) => controller.error(err),
          });
        },
        pull: () => this.resume(),
        cancel: (reason) =>
          this.cancel(reason instanceof Error ? reason : new Error('The response body was cancelled')),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: this.#highWaterMark }),
    );
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#control?.pause();
  }
}
