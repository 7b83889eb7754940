import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { hasCode } from '../core/errors.js';
import { createSqliteQueue } from '../queue/sqlite-queue.js';
import type { Queue } from '../queue/types.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { type AsyncInvocationsNode, createAsyncInvocations, DELIVERY_QUEUE } from './async-invocations.js';
import type { InvocationRequest, InvocationResponse, Invoker } from './invoker.js';
import type { AsyncConfig } from './types.js';

type Answer = (
  name: string,
  req: InvocationRequest,
) => Partial<InvocationResponse> | Promise<Partial<InvocationResponse>>;

interface FakeInvoker {
  calls: { name: string; request: InvocationRequest; requestId?: string }[];
  answer: Answer;
  invoker: Invoker;
}

/** A stand-in for the function side: answers with whatever `answer` says, and records every call. */
function fakeInvoker(): FakeInvoker {
  const fake: FakeInvoker = {
    calls: [],
    answer: () => ({ status: 200, body: Buffer.from('ok') }),
    invoker: {
      async invoke(name, request, options = {}) {
        fake.calls.push({ name, request, requestId: options.requestId });
        const a: Partial<InvocationResponse> = await fake.answer(name, request);
        return { status: 200, headers: {}, body: Buffer.alloc(0), truncated: false, cold: false, durationMs: 1, ...a };
      },
    },
  };
  return fake;
}

/** Lets the dispatcher's promise chains run (event-loop turns, not wall-clock time). */
async function turns(n = 30): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('async invocations', () => {
  let clock: ReturnType<typeof createManualClock>;
  let queue: Queue;
  let store: Store;
  let fake: ReturnType<typeof fakeInvoker>;
  let events: AsyncInvocationsNode;
  const functions = new Set(['work', 'sink']);
  const req = (body = 'payload'): InvocationRequest => ({
    method: 'POST',
    path: '/do?x=1',
    headers: { 'content-type': 'text/plain' },
    body: Buffer.from(body),
  });

  beforeEach(async () => {
    clock = createManualClock(1_000_000);
    queue = createSqliteQueue({ path: ':memory:', clock });
    store = createSqliteStore({ path: ':memory:' });
    fake = fakeInvoker();
    events = createAsyncInvocations({
      queue,
      clock,
      invoker: fake.invoker,
      configs: store.bucket<AsyncConfig>('async-config'),
      exists: (name) => functions.has(name),
      timeoutMs: () => 30_000,
      defaults: { retryBaseDelayMs: 1000, retryJitter: 0 },
    });
    await events.start();
  });
  afterEach(async () => {
    await events.close(0);
    await queue.close();
    await store.close();
  });

  it('runs an invocation with the stored request and keeps the result', async () => {
    const queued = await events.enqueue('work', req());
    assert.equal(queued.status, 'queued');
    const done = await events.waitFor(queued.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.attempts, 1);
    assert.equal(done.result?.status, 200);
    assert.equal(done.result?.body, 'ok');
    assert.equal(fake.calls[0]?.request.path, '/do?x=1');
    assert.equal(Buffer.from(fake.calls[0]!.request.body!).toString(), 'payload');
    assert.equal(fake.calls[0]?.requestId, queued.id, 'the invocation id is the request id (logs)');
  });

  it('refuses an unknown function at enqueue', async () => {
    await assert.rejects(events.enqueue('nope', req()), (e) => hasCode(e, 'NIMBUS_ERR_FUNCTION_NOT_FOUND'));
    assert.equal((await queue.counts()).queued, 0);
  });

  it('retries a 5xx with exponential backoff, then dead-letters it, then a redrive runs it again', async () => {
    await events.setConfig('work', { destinations: { onFailure: 'function:sink' } });
    fake.answer = (name) => (name === 'work' ? { status: 500, body: Buffer.from('boom') } : { status: 200 });
    const { id } = await events.enqueue('work', req());
    await turns();
    assert.equal(fake.calls.length, 1);
    let view = await events.get(id);
    assert.equal(view?.status, 'queued');
    assert.equal(view?.lastError, 'HTTP 500');
    assert.equal(view?.nextAttemptAt, new Date(clock.now() + 1000).toISOString());
    clock.advance(999);
    await turns();
    assert.equal(fake.calls.length, 1, 'not before the first backoff');
    clock.advance(1);
    await turns();
    assert.equal(fake.calls.length, 2);
    clock.advance(1999);
    await turns();
    assert.equal(fake.calls.length, 2, 'the second backoff is twice the first');
    clock.advance(1);
    await turns();
    assert.equal(fake.calls.filter((c) => c.name === 'work').length, 3, 'first attempt + 2 retries');
    view = await events.get(id);
    assert.equal(view?.status, 'dead');
    assert.equal(view?.attempts, 3);
    assert.deepEqual(
      (await events.deadLetters('work')).map((v) => v.id),
      [id],
    );
    // The on-failure destination got the record as an async invocation of `sink`.
    const sinkCall = fake.calls.find((c) => c.name === 'sink');
    assert.ok(sinkCall, 'the destination function was invoked');
    const record = JSON.parse(Buffer.from(sinkCall.request.body!).toString());
    assert.equal(record.condition, 'RetriesExhausted');
    assert.equal(record.id, id);
    assert.equal(record.status, 'dead');
    assert.equal(record.request.body, 'payload');
    assert.equal(record.response.body, 'boom');

    fake.answer = () => ({ status: 200 });
    assert.deepEqual(await events.redrive('work'), [id]);
    const again = await events.waitFor(id);
    assert.equal(again.status, 'succeeded');
    assert.equal(again.attempts, 1, 'a redrive starts the attempts again');
  });

  it('treats a 4xx as final (failed, no retry, no DLQ) but retries 429', async () => {
    fake.answer = (_n, r) => ({ status: Buffer.from(r.body!).toString() === 'slow down' ? 429 : 400 });
    const rejected = await events.enqueue('work', req('bad'));
    const done = await events.waitFor(rejected.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.attempts, 1);
    assert.equal((await events.deadLetters('work')).length, 0);
    const limited = await events.enqueue('work', req('slow down'));
    await turns();
    assert.equal((await events.get(limited.id))?.status, 'queued');
  });

  it('dead-letters an event that would outlive its maximum age', async () => {
    await events.setConfig('work', { maxEventAge: 10 });
    await events.close(0);
    events = createAsyncInvocations({
      queue,
      clock,
      invoker: fake.invoker,
      configs: store.bucket<AsyncConfig>('async-config'),
      exists: () => true,
      timeoutMs: () => 30_000,
      defaults: { retryBaseDelayMs: 8000 },
    });
    await events.start();
    fake.answer = () => ({ status: 503 });
    const { id } = await events.enqueue('work', req());
    await turns();
    clock.advance(8000);
    await turns();
    const view = await events.get(id);
    assert.equal(view?.status, 'dead', 'the next retry (at 24 s) would be past the 10 s age');
    assert.equal(view?.attempts, 2);
  });

  it('runs at most `concurrency` invocations of a function at once', async () => {
    await events.setConfig('work', { concurrency: 2 });
    const gates: (() => void)[] = [];
    fake.answer = () => new Promise((resolve) => gates.push(() => resolve({ status: 200 })));
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await events.enqueue('work', req())).id);
    await turns();
    assert.equal(fake.calls.length, 2);
    assert.equal(events.dispatcher.running, 2);
    gates.shift()!();
    await turns();
    assert.equal(fake.calls.length, 3);
    while (gates.length > 0 || fake.calls.length < 5) {
      gates.shift()?.();
      await turns();
    }
    for (const id of ids) assert.equal((await events.waitFor(id)).status, 'succeeded');
  });

  it('posts the record to the callback URL when the invocation ends', async () => {
    const received = new Promise<{ headers: Record<string, unknown>; body: string }>((resolve) => {
      const server = createServer((r, res) => {
        let body = '';
        r.on('data', (c) => (body += c));
        r.on('end', () => {
          res.end('thanks');
          server.close();
          resolve({ headers: r.headers, body });
        });
      });
      server.listen(0, '127.0.0.1', async () => {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
        await events.enqueue('work', req(), { callbackUrl: url });
      });
    });
    const { headers, body } = await received;
    const record = JSON.parse(body);
    assert.equal(record.condition, 'Success');
    assert.equal(record.response.body, 'ok');
    assert.equal(headers['x-nimbus-invocation-id'], record.id);
    await turns();
    assert.equal((await queue.counts(DELIVERY_QUEUE)).succeeded, 1);
  });

  it('rejects bad settings and destinations with the field named', async () => {
    const invalid = (e: unknown) => hasCode(e, 'NIMBUS_ERR_INVALID_REQUEST');
    await assert.rejects(events.setConfig('work', { maxRetries: -1 }), invalid);
    await assert.rejects(events.setConfig('work', { destinations: { onSuccess: 'ftp://x' } }), /onSuccess/);
    await assert.rejects(events.setConfig('work', { bogus: 1 } as AsyncConfig), /bogus/);
    assert.deepEqual(await events.setConfig('work', { maxRetries: 0, destinations: { onSuccess: 'nats:a.b' } }), {
      maxRetries: 0,
      destinations: { onSuccess: 'nats:a.b' },
    });
  });
});
