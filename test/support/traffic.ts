import { PassThrough } from 'node:stream';
import { runCli } from '../../src/cli/index.js';
import type { TestNode } from './nimbus.js';

/** Runs the `nimbus` CLI in-process against `url`, capturing its output. */
export async function cli(url: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c) => out.push(c));
  stderr.on('data', (c) => err.push(c));
  const code = await runCli([...args, '--url', url], { context: { stdout, stderr } });
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** Sends `total` GETs to `path` with `parallel` in flight; returns the count of each response body. */
export async function tally(node: TestNode, path: string, total: number, parallel = 8): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      const body = await (await node.call(path)).text();
      counts.set(body, (counts.get(body) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return counts;
}

/**
 * Keeps `parallel` clients sending GETs to `path` until `done()` (checked every 200 ms) returns a
 * truthy value or `timeoutMs` passes. Returns that value and how many requests were sent.
 */
export async function driveUntil<T>(
  node: TestNode,
  path: string,
  done: () => Promise<T | undefined | false>,
  { parallel = 4, timeoutMs = 120_000 } = {},
): Promise<{ value: T; requests: number }> {
  let stop = false;
  let requests = 0;
  const worker = async () => {
    while (!stop) {
      await (await node.call(path)).arrayBuffer();
      requests++;
    }
  };
  const workers = Array.from({ length: parallel }, worker);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const value = await done();
      if (value) return { value, requests };
      if (Date.now() > deadline) throw new Error(`timed out after ${requests} requests`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    stop = true;
    await Promise.all(workers);
  }
}
