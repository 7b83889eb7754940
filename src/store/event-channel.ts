/**
 * An unbounded push → pull queue behind an AsyncIterable: the producer pushes synchronously (so
 * a subscriber registered before a write never misses it), the consumer pulls with `for await`.
 * Ending (abort, `return()` from a `break`, or `close()`) drops what is still buffered.
 */
export class EventChannel<T> implements AsyncIterableIterator<T> {
  #buffer: T[] = [];
  // Resolvers of next() calls made while the buffer was empty, oldest first.
  #waiting: ((r: IteratorResult<T>) => void)[] = [];
  #done = false;
  #onClose: () => void;

  constructor(onClose: () => void = () => {}) {
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#done;
  }

  push(value: T): void {
    if (this.#done) return;
    const waiting = this.#waiting.shift();
    if (waiting) {
      waiting({ value, done: false });
    } else {
      this.#buffer.push(value);
    }
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#buffer = [];
    for (const waiting of this.#waiting.splice(0)) waiting({ value: undefined, done: true });
    this.#onClose();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#buffer.length > 0) return Promise.resolve({ value: this.#buffer.shift() as T, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/** Ties a channel to an AbortSignal: it ends when the signal aborts (at once if already aborted). */
export function closeOnAbort(channel: { close(): void }, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    channel.close();
    return () => {};
  }
  const onAbort = () => channel.close();
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}
