import type { AbortLike } from '../core/abort.js';
import { NimbusError } from '../core/errors.js';

/** One held request: settle it exactly once. */
export interface HeldRequest<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

/**
 * The activator's queue of one revision: requests held, in arrival order, while no instance slot
 * is free (at zero, or a burst above the spare capacity). Bounded: `full` tells the caller to
 * answer 503 instead of holding more (unbounded queues are a known Knative failure).
 */
export class HeldRequests<T> {
  readonly limit: number;
  #items: (HeldRequest<T> & { cleanup(): void })[] = [];
  #changed: () => void;

  /** `changed` runs whenever the queue's length changes (the autoscaler counts held requests). */
  constructor(limit: number, changed: () => void) {
    this.limit = limit;
    this.#changed = changed;
  }

  get length(): number {
    return this.#items.length;
  }

  get full(): boolean {
    return this.#items.length >= this.limit;
  }

  /** Holds a request until `next` hands it a value; an abort of `signal` gives up its place. */
  hold(signal?: AbortLike): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#items.indexOf(item);
        if (i >= 0) this.#items.splice(i, 1);
        this.#changed();
        reject(signal?.reason ?? new NimbusError('NIMBUS_ERR_TIMEOUT', 'Gave up waiting for an instance'));
      };
      const item = { resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#items.push(item);
      this.#changed();
    });
  }

  /** The oldest held request, taken out of the queue; undefined when none. */
  next(): HeldRequest<T> | undefined {
    const item = this.#items.shift();
    item?.cleanup();
    return item;
  }

  /** Fails every held request with `err`. */
  failAll(err: unknown): void {
    const items = this.#items.splice(0);
    for (const item of items) {
      item.cleanup();
      item.reject(err);
    }
    if (items.length > 0) this.#changed();
  }
}
