/**
 * A small ReadableStream / TransformStream for the isolate: enough for bodies (a reader, async
 * iteration, pipeThrough, tee-less). Bodies cross the host boundary whole (docs/isolate.md), so
 * these streams only ever run inside one isolate.
 */

type Source = {
  start?(c: ReadableStreamController): unknown;
  pull?(c: ReadableStreamController): unknown;
  cancel?(reason?: unknown): unknown;
};

export interface ReadableStreamController {
  enqueue(chunk: unknown): void;
  close(): void;
  error(e: unknown): void;
  readonly desiredSize: number;
}

export class ReadableStream {
  #queue: unknown[] = [];
  #closed = false;
  #error: unknown = undefined;
  #errored = false;
  #waiters: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: unknown) => void }[] = [];
  #source: Source;
  #pulling = false;
  #started: Promise<void>;
  locked = false;

  constructor(source: Source = {}) {
    this.#source = source;
    const controller: ReadableStreamController = {
      enqueue: (chunk) => {
        if (this.#closed) throw new TypeError('The stream is closed');
        const waiter = this.#waiters.shift();
        if (waiter) waiter.resolve({ value: chunk, done: false });
        else this.#queue.push(chunk);
      },
      close: () => {
        this.#closed = true;
        if (this.#queue.length === 0)
          for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
      },
      error: (e) => {
        this.#errored = true;
        this.#error = e;
        for (const w of this.#waiters.splice(0)) w.reject(e);
      },
      get desiredSize() {
        return 1;
      },
    };
    this.#controller = controller;
    this.#started = Promise.resolve(source.start?.(controller)).then(() => undefined);
  }
  #controller: ReadableStreamController;

  /** @internal */
  async _read(): Promise<IteratorResult<unknown>> {
    await this.#started;
    if (this.#queue.length > 0) {
      const value = this.#queue.shift();
      if (this.#closed && this.#queue.length === 0)
        for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
      return { value, done: false };
    }
    if (this.#errored) throw this.#error;
    if (this.#closed) return { value: undefined, done: true };
    const next = new Promise<IteratorResult<unknown>>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.#source.pull && !this.#pulling) {
      this.#pulling = true;
      try {
        await this.#source.pull(this.#controller);
      } catch (e) {
        this.#controller.error(e);
      } finally {
        this.#pulling = false;
      }
    }
    return next;
  }

  getReader() {
    if (this.locked) throw new TypeError('The stream is locked to a reader');
    this.locked = true;
    return {
      read: () => this._read(),
      releaseLock: () => {
        this.locked = false;
      },
      cancel: (reason?: unknown) => this.cancel(reason),
      closed: this.#started,
    };
  }
  async cancel(reason?: unknown) {
    this.#closed = true;
    this.#queue.length = 0;
    await this.#source.cancel?.(reason);
  }
  async *[Symbol.asyncIterator]() {
    const reader = this.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  }
  pipeThrough(transform: { writable: WritableStream; readable: ReadableStream }) {
    void this.pipeTo(transform.writable).catch(() => {});
    return transform.readable;
  }
  async pipeTo(dest: WritableStream) {
    const writer = dest.getWriter();
    try {
      for await (const chunk of this) await writer.write(chunk);
      await writer.close();
    } catch (e) {
      await writer.abort(e);
      throw e;
    }
  }
  static from(iterable: Iterable<unknown> | AsyncIterable<unknown>) {
    return new ReadableStream({
      async start(c) {
        for await (const chunk of iterable as AsyncIterable<unknown>) c.enqueue(chunk);
        c.close();
      },
    });
  }
}

type Sink = { write?(chunk: unknown): unknown; close?(): unknown; abort?(reason?: unknown): unknown };

export class WritableStream {
  #sink: Sink;
  constructor(sink: Sink = {}) {
    this.#sink = sink;
  }
  getWriter() {
    const sink = this.#sink;
    return {
      write: async (chunk: unknown) => void (await sink.write?.(chunk)),
      close: async () => void (await sink.close?.()),
      abort: async (reason?: unknown) => void (await sink.abort?.(reason)),
      releaseLock() {},
      ready: Promise.resolve(),
    };
  }
}

type Transformer = {
  start?(c: ReadableStreamController): unknown;
  transform?(chunk: unknown, c: ReadableStreamController): unknown;
  flush?(c: ReadableStreamController): unknown;
};

export class TransformStream {
  readonly readable: ReadableStream;
  readonly writable: WritableStream;
  constructor(transformer: Transformer = {}) {
    let controller!: ReadableStreamController;
    this.readable = new ReadableStream({
      start(c) {
        controller = c;
        return transformer.start?.(c);
      },
    });
    this.writable = new WritableStream({
      write: (chunk) => (transformer.transform ? transformer.transform(chunk, controller) : controller.enqueue(chunk)),
      close: async () => {
        await transformer.flush?.(controller);
        controller.close();
      },
      abort: (reason) => controller.error(reason),
    });
  }
}
