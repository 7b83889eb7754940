/**
 * isolated-vm's asynchronous calls hold no libuv handle that keeps Node's event loop alive: when
 * one is the only thing left pending (a shutdown draining an instance, a test awaiting an
 * answer), Node may exit with the promise unresolved. While any is pending, one ref'd timer does.
 */
let pending = 0;
let timer: NodeJS.Timeout | undefined;

/** Returns `promise`, keeping the event loop alive until it settles. */
export function keepAlive<T>(promise: Promise<T>): Promise<T> {
  if (pending++ === 0) timer = setInterval(() => {}, 2 ** 30);
  return promise.finally(() => {
    if (--pending === 0) clearInterval(timer);
  });
}
