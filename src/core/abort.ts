/**
 * Cancelling a request without an AbortController per request. Making an AbortController and
 * adding and removing an `abort` listener cost the gateway ≈ 4 µs per request (≈ 9% of its CPU
 * in a profile under load), for requests that almost never abort. The gateway makes a LazyAbort
 * instead; whatever only listens takes it as an AbortLike, and a real AbortSignal is made only
 * for code that needs one (undici, an isolate, a function reading `request.signal`).
 */

/** The part of AbortSignal that cancelling needs; AbortSignal itself is one. */
export interface AbortLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** An abort with listeners (each called once, in order) and an AbortSignal made on demand. */
export class LazyAbort implements AbortLike {
  aborted = false;
  reason: unknown = undefined;
  #listeners: (() => void)[] | undefined;
  #controller: AbortController | undefined;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
    this.#controller?.abort(reason);
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    if (this.#listeners) this.#listeners.push(listener);
    else this.#listeners = [listener];
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.#listeners;
    const at = listeners ? listeners.indexOf(listener) : -1;
    if (at !== -1) listeners!.splice(at, 1);
  }
}

/** A real AbortSignal for `like` (itself when it is one). */
export function toAbortSignal(like: AbortLike): AbortSignal;
export function toAbortSignal(like: AbortLike | undefined): AbortSignal | undefined;
export function toAbortSignal(like: AbortLike | undefined): AbortSignal | undefined {
  if (like === undefined || like instanceof AbortSignal) return like;
  if (like instanceof LazyAbort) return like.signal;
  const controller = new AbortController();
  if (like.aborted) controller.abort(like.reason);
  else like.addEventListener('abort', () => controller.abort(like.reason), { once: true });
  return controller.signal;
}
