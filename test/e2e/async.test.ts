import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/index.js';
import { APPS, eventually, readJson, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';

const failing = writeSource({
  'index.js': `export default { fetch: () => new Response('not yet', { status: 500 }) };`,
  'nimbus.yaml': 'name: flaky\n',
});
const fixed = writeSource({
  'index.js': `export default { fetch: async (r) => new Response('fixed: ' + (await r.text())) };`,
  'nimbus.yaml': 'name: flaky\n',
});

const broken = writeSource({
  'index.js': `export default { fetch: () => new Response('broken', { status: 503 }) };`,
  'nimbus.yaml': 'name: broken\n',
});

/** Runs the CLI in-process against `url`, capturing its output. */
async function cli(url: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(chunk, _encoding, callback) {
        add(String(chunk));
        callback();
      },
    });
  const code = await runCli(args, {
    context: { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), env: { NIMBUS_URL: url } },
  });
  return { code, stdout, stderr };
}

/** A loopback webhook that collects what it receives. */
async function startHook(): Promise<{ url: string; received: { headers: any; body: any }[]; server: Server }> {
  const received: { headers: any; body: any }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, server };
}

describe('async invocation', () => {
  let node: TestNode;
  let hook: Awaited<ReturnType<typeof startHook>>;
  before(async () => {
    node = await startTestNode({ maxBodyBytes: 64 * 1024, async: { retryBaseDelayMs: 50 } });
    hook = await startHook();
    assert.equal((await node.deploy(`${APPS}/echo`)).status, 201);
  });
  after(async () => {
    hook.server.close();
    await node.dispose();
  });

  const waitDone = (id: string) =>
    eventually(
      async () => {
        const view = await node.json(`/api/v1/invocations/${id}`);
        return ['succeeded', 'failed', 'dead'].includes(view.status) && view;
      },
      20_000,
      `invocation ${id} to end`,
    );

  it('answers 202 with an id, then runs the stored request and keeps the result', async () => {
    const res = await node.call('/async/fn/echo/any/path?q=1', {
      method: 'PUT',
      body: 'payload',
      headers: { 'x-custom': 'v' },
    });
    assert.equal(res.status, 202);
    const accepted = await readJson(res);
    assert.equal(accepted.status, 'queued');
    assert.equal(accepted.statusUrl, `${node.url}/api/v1/invocations/${accepted.id}`);
    assert.equal(res.headers.get('location'), accepted.statusUrl);
    const done = await waitDone(accepted.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.attempts, 1);
    assert.equal(done.request.method, 'PUT');
    assert.equal(done.request.path, '/any/path?q=1');
    assert.equal(done.result.status, 200);
    const echoed = JSON.parse(done.result.body);
    assert.equal(echoed.method, 'PUT');
    assert.equal(echoed.path, '/any/path');
    assert.deepEqual(echoed.query, { q: '1' });
    assert.equal(echoed.body, 'payload');
    assert.equal(echoed.headers['x-custom'], 'v');
    assert.equal(echoed.headers['x-nimbus-request-id'], accepted.id, 'the invocation id is the request id');
  });

  it('answers 404 for an unknown function and 413 for a body over the limit, storing nothing', async () => {
    const missing = await node.call('/async/fn/nope/', { method: 'POST', body: 'x' });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('x-nimbus-error'), 'NIMBUS_ERR_FUNCTION_NOT_FOUND');
    const big = await node.call('/async/fn/echo/', { method: 'POST', body: 'x'.repeat(70 * 1024) });
    assert.equal(big.status, 413);
    assert.equal(big.headers.get('x-nimbus-error'), 'NIMBUS_ERR_PAYLOAD_TOO_LARGE');
    const unknown = await node.call('/api/v1/invocations/nope');
    assert.equal(unknown.status, 404);
    assert.equal((await readJson(unknown)).error.code, 'NIMBUS_ERR_INVOCATION_NOT_FOUND');
  });

  it('retries a failing function, dead-letters it, tells the destinations, and a redrive after a fix succeeds', async () => {
    assert.equal((await node.deploy(failing)).status, 201);
    const config = await node.call('/api/v1/functions/flaky/async-config', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ maxRetries: 1, destinations: { onFailure: 'function:echo', onSuccess: hook.url } }),
    });
    assert.equal(config.status, 200, await config.clone().text());
    const { id } = await node.json('/async/fn/flaky/job', { method: 'POST', body: 'work item' });
    const dead = await waitDone(id);
    assert.equal(dead.status, 'dead');
    assert.equal(dead.attempts, 2, 'first attempt + maxRetries 1');
    assert.equal(dead.lastError, 'HTTP 500');
    const dlq = await node.json('/api/v1/functions/flaky/dlq');
    assert.deepEqual(
      dlq.invocations.map((v: any) => v.id),
      [id],
    );

    // The on-failure destination is an async invocation of echo carrying the record.
    const delivered = await eventually(async () => {
      const { invocations } = await node.json('/api/v1/functions/echo/invocations?state=succeeded');
      return invocations.find((v: any) => v.request.headers['x-nimbus-invocation-id'] === id);
    });
    const record = JSON.parse(JSON.parse(delivered.result.body).body);
    assert.equal(record.condition, 'RetriesExhausted');
    assert.equal(record.request.body, 'work item');
    assert.equal(record.response.status, 500);

    assert.equal((await node.deploy(fixed)).status, 201);
    const redrive = await node.json('/api/v1/functions/flaky/dlq/redrive', {
      method: 'POST',
      body: JSON.stringify({ ids: [id] }),
    });
    assert.deepEqual(redrive.redriven, [id]);
    const done = await waitDone(id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.result.body, 'fixed: work item');
    assert.equal(done.result.revision, 'r2');
    assert.equal((await node.json('/api/v1/functions/flaky/dlq')).invocations.length, 0);

    const success = await eventually(() => hook.received.find((r) => r.body.id === id));
    assert.equal(success!.body.condition, 'Success');
    assert.equal(success!.headers['x-nimbus-function'], 'flaky');
  });

  it('posts the record to the x-nimbus-callback-url of an invocation', async () => {
    const { id } = await node.json('/async/fn/echo/cb', {
      method: 'POST',
      body: 'call me back',
      headers: { 'x-nimbus-callback-url': `${hook.url}?from=callback` },
    });
    const got = await eventually(() => hook.received.find((r) => r.body.id === id));
    assert.equal(got!.body.condition, 'Success');
    assert.equal(JSON.parse(got!.body.response.body).body, 'call me back');
    const bad = await node.call('/async/fn/echo/', { method: 'POST', headers: { 'x-nimbus-callback-url': 'nats:x' } });
    assert.equal(bad.status, 400);
  });

  it('nimbus invoke --async [--wait] and nimbus dlq ls / show / redrive', async () => {
    const queued = await cli(node.url, 'invoke', 'echo', '--async', '--path', '/x', '-d', 'from cli');
    assert.equal(queued.code, 0, queued.stderr);
    const id = queued.stdout.trim();
    assert.equal((await waitDone(id)).status, 'succeeded');
    const waited = await cli(node.url, 'invoke', 'echo', '--async', '--wait', '-d', 'waited');
    assert.equal(waited.code, 0, waited.stderr);
    assert.equal(JSON.parse(waited.stdout).body, 'waited');

    assert.equal((await node.deploy(broken)).status, 201);
    await node.call('/api/v1/functions/broken/async-config', { method: 'PUT', body: '{"maxRetries":0}' });
    const failed = await cli(node.url, 'invoke', 'broken', '--wait', '-d', 'x');
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /^queued (\S+), waiting…\nnimbus: invocation \1 dead after 1 attempt: HTTP 503\n$/);
    const deadId = /^queued (\S+),/.exec(failed.stderr)![1]!;
    const ls = await cli(node.url, 'dlq', 'ls', 'broken');
    assert.equal(ls.code, 0);
    assert.match(ls.stdout, new RegExp(`^ID .*\\n${deadId}\\s+1\\s+.*POST /\\s+HTTP 503\\n$`));
    const show = await cli(node.url, 'dlq', 'show', deadId);
    assert.match(show.stdout, /status:\s+dead/);
    assert.match(show.stdout, /result:\s+HTTP 503/);
    const redriven = await cli(node.url, 'dlq', 'redrive', 'broken', deadId);
    assert.equal(redriven.stdout, `re-driven 1: ${deadId}\n`);
    const missing = await cli(node.url, 'dlq', 'show', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NIMBUS_ERR_INVOCATION_NOT_FOUND/);
  });

  it('a redrive of an id not in the DLQ is a 404', async () => {
    const res = await node.call('/api/v1/functions/echo/dlq/redrive', {
      method: 'POST',
      body: JSON.stringify({ ids: ['missing'] }),
    });
    assert.equal(res.status, 404);
  });
});
