import { WebSocket } from 'undici';

/** Opens a WebSocket and resolves once it is open; messages are queued for `next`. */
export async function openSocket(url: string, headers?: Record<string, string>) {
  const ws = new WebSocket(url, headers ? { headers } : undefined);
  const queue: string[] = [];
  const waiting: ((m: string) => void)[] = [];
  ws.onmessage = (e) => {
    const next = waiting.shift();
    if (next) next(String(e.data));
    else queue.push(String(e.data));
  };
  const closed = new Promise<number>((resolve) => {
    ws.onclose = (e) => resolve(e.code);
  });
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error(`websocket failed: ${(e as any).message ?? 'error'}`));
  });
  const next = () =>
    queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise<string>((resolve) => waiting.push(resolve));
  return { ws, next, closed };
}
