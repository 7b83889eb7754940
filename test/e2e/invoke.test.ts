import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { APPS, eventually, readJson, startTestNode, type TestNode } from '../support/nimbus.js';

describe('invoking functions through the gateway', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode({ maxBodyBytes: 64 * 1024 });
    for (const app of ['echo', 'lambda', 'py-app']) {
      const { status, body } = await node.deploy(`${APPS}/${app}`, app === 'lambda' ? { name: 'lambda' } : {});
      assert.equal(status, 201, JSON.stringify(body));
    }
  });
  after(() => node.dispose());

  it('passes method, path, query, headers and body through, and the response back', async () => {
    const res = await node.call('/fn/echo/any/path?q=1&r=two', {
      method: 'PUT',
      body: 'payload',
      headers: { 'x-custom': 'v' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-echo'), 'yes');
    assert.equal(res.headers.get('set-cookie'), 'a=1');
    assert.match(res.headers.get('x-nimbus-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const text = await res.text();
    // An answer that is all there when its head arrives goes with its length, not chunked.
    assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(text)));
    assert.equal(res.headers.get('transfer-encoding'), null);
    const body = JSON.parse(text);
    assert.equal(body.greeting, 'hello, world', 'the local module import was bundled');
    assert.equal(body.method, 'PUT');
    assert.equal(body.path, '/any/path');
    assert.deepEqual(body.query, { q: '1', r: 'two' });
    assert.equal(body.headers['x-custom'], 'v');
    assert.equal(body.headers['x-nimbus-request-id'], res.headers.get('x-nimbus-request-id'));
    assert.equal(body.body, 'payload');
  });

  it('replaces what a caller may not set: forwarding headers, platform headers, hop-by-hop ones', async () => {
    const { status, body } = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = httpRequest(
        `${node.url}/fn/echo/h`,
        {
          headers: {
            'x-forwarded-for': '6.6.6.6',
            'x-forwarded-host': 'evil.example',
            'x-forwarded-proto': 'https',
            'x-nimbus-request-id': 'forged',
            'x-nimbus-deadline': '1',
            'x-nimbus-anything': 'x',
            'proxy-connection': 'keep-alive',
            te: 'trailers',
            'x-kept': 'yes',
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res
            .on('data', (c) => (text += c))
            .on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject).end();
    });
    assert.equal(status, 200);
    const h = body.headers;
    const host = new URL(node.url).host;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-host'], host);
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h.host, host);
    assert.match(h['x-nimbus-request-id'], /^[0-9a-f-]{36}$/);
    assert.equal(h['x-nimbus-deadline'], undefined, "the deadline is the platform's own business");
    for (const gone of ['x-nimbus-anything', 'proxy-connection', 'te']) assert.equal(h[gone], undefined, gone);
    assert.equal(h['x-kept'], 'yes');
  });

  it('reaches the function at / when the URL has no path after the name', async () => {
    const body = await node.json('/fn/echo?x=1');
    assert.equal(body.path, '/');
    assert.deepEqual(body.query, { x: '1' });
  });

  it('streams the response: the first chunk arrives before the function finishes', async () => {
    const res = await node.call('/fn/echo/stream');
    assert.equal(res.headers.get('transfer-encoding'), 'chunked', 'a body still coming goes chunked');
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), 'chunk 0\n');
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    assert.equal(rest, 'chunk 1\nchunk 2\n');
  });

  it('streams a chunked request body to the function', async () => {
    const chunks = Array.from({ length: 20 }, () => new Uint8Array(1000).fill(97));
    const body = new ReadableStream({
      pull(controller) {
        const c = chunks.pop();
        if (c) controller.enqueue(c);
        else controller.close();
      },
    });
    const res = await node.call('/fn/echo/count', { method: 'POST', body, duplex: 'half' });
    assert.deepEqual(await readJson(res), { bytes: 20_000 });
  });

  it('runs an unmodified Lambda handler with an API Gateway v2 event', async () => {
    const res = await node.call('/fn/lambda/orders?id=7', { method: 'POST', body: 'hi' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-lambda'), 'yes');
    assert.equal(res.headers.get('set-cookie'), 'session=abc');
    const body = await readJson(res);
    assert.deepEqual(
      { ...body, requestId: undefined },
      { method: 'POST', rawPath: '/orders', query: { id: '7' }, body: 'hi', remaining: true, requestId: undefined },
    );
    assert.equal(body.requestId, res.headers.get('x-nimbus-request-id'));
    const plain = await node.call('/fn/lambda/plain');
    assert.equal(plain.headers.get('content-type'), 'application/json');
    assert.deepEqual(await readJson(plain), { ok: true, from: 'lambda' });
  });

  it('runs a Python program in app mode, unchanged, behind the watchdog', async () => {
    const res = await node.call('/fn/py-app/hello?x=1', { method: 'POST', body: 'from test' });
    assert.equal(res.status, 200);
    assert.deepEqual(await readJson(res), { lang: 'python', method: 'POST', path: '/hello?x=1', body: 'from test' });
  });

  it('answers 404 with a platform error for an unknown function', async () => {
    const res = await node.call('/fn/nope/');
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-nimbus-error'), 'NIMBUS_ERR_FUNCTION_NOT_FOUND');
    assert.equal((await readJson(res)).error.code, 'NIMBUS_ERR_FUNCTION_NOT_FOUND');
  });

  it('answers 404 to a malformed escape in the function name (it once crashed the node)', async () => {
    for (const path of ['/fn/sh%E0%A4%A/x', '/async/fn/sh%E0%A4%A/x']) {
      const res = await node.call(path, { method: 'POST', body: 'x' });
      assert.equal(res.status, 404, path);
      assert.equal((await readJson(res)).error.code, 'NIMBUS_ERR_FUNCTION_NOT_FOUND');
    }
    assert.equal((await node.call('/healthz')).status, 200);
  });

  it('answers requests node:http cannot parse with a JSON platform error, and keeps serving', async () => {
    const raw = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        const { port } = new URL(node.url);
        const socket = connect(Number(port), '127.0.0.1', () => socket.end(bytes));
        let text = '';
        socket.setEncoding('utf8');
        socket
          .on('data', (c) => (text += c))
          .on('end', () => resolve(text))
          .on('error', reject);
      });
    const garbage = await raw('GARBAGE\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    assert.match(garbage, /x-nimbus-error: NIMBUS_ERR_INVALID_REQUEST/);
    assert.match(garbage, /"code":"NIMBUS_ERR_INVALID_REQUEST","message":"Malformed HTTP request: /);
    const smuggled = await raw(
      'POST /fn/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    assert.match(smuggled, /^HTTP\/1\.1 400 /, 'both Content-Length and Transfer-Encoding: refused');
    const huge = await raw(`GET /fn/echo/ HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431 /);
    assert.match(huge, /"code":"NIMBUS_ERR_HEADERS_TOO_LARGE"/);
    assert.equal((await node.call('/fn/echo/')).status, 200);
  });

  it('answers 500 when the function throws, and logs the stack with the request id', async () => {
    const res = await node.call('/fn/echo/throw');
    assert.equal(res.status, 500);
    assert.equal(res.headers.get('x-nimbus-error'), 'NIMBUS_ERR_FUNCTION_ERROR');
    assert.match((await readJson(res)).error.message, /boom from the function/);
    const requestId = res.headers.get('x-nimbus-request-id')!;
    const logs = await eventually(async () => {
      const { logs } = await node.json(`/api/v1/functions/echo/logs?requestId=${requestId}`);
      return logs.some((l: any) => /boom from the function/.test(l.line)) && logs;
    });
    assert.ok(logs.every((l: any) => l.requestId === requestId));
  });

  it("aborts the function's request.signal when its caller closes the connection", async () => {
    const tag = `t${Date.now()}`;
    const timeOf = async (line: string) => {
      const { logs } = await node.json('/api/v1/functions/echo/logs');
      return logs.find((l: any) => l.line === line)?.time as string;
    };
    const req = httpRequest(`${node.url}/fn/echo/wait-abort?tag=${tag}`);
    req.on('error', () => {});
    req.end();
    const waiting = await eventually(() => timeOf(`waiting ${tag}`));
    req.destroy();
    const aborted = await eventually(() => timeOf(`aborted ${tag}`));
    // Well before echo's 2 s timeout, which would abort it too.
    const ms = Date.parse(aborted) - Date.parse(waiting);
    assert.ok(ms < 1500, `aborted ${ms} ms after it started waiting`);
  });

  it('answers 413 for a body over the limit, declared or chunked', async () => {
    const declared = await node.call('/fn/echo/', { method: 'POST', body: 'x'.repeat(70 * 1024) });
    assert.equal(declared.status, 413);
    assert.equal(declared.headers.get('x-nimbus-error'), 'NIMBUS_ERR_PAYLOAD_TOO_LARGE');
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${node.url}/fn/echo/count`, { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      for (let i = 0; i < 80; i++) req.write('y'.repeat(1024));
      req.end();
    });
    assert.equal(status, 413);
  });

  it('answers 504 past the timeout and recycles the stuck instance', async () => {
    const id = await (await node.call('/fn/echo/id')).text();
    const res = await node.call('/fn/echo/spin');
    assert.equal(res.status, 504);
    assert.equal(res.headers.get('x-nimbus-error'), 'NIMBUS_ERR_TIMEOUT');
    await eventually(
      async () => !(await node.json('/api/v1/functions/echo')).instances.some((i: { id: string }) => i.id === id),
      10_000,
      'the spinning instance to be stopped',
    );
    assert.equal((await node.call('/fn/echo/')).status, 200, 'a fresh instance serves the next request');
  });

  it('answers 502 when the instance dies mid-request, and replaces it', async () => {
    const res = await node.call('/fn/echo/exit');
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('x-nimbus-error'), 'NIMBUS_ERR_INSTANCE_CRASHED');
    assert.equal((await node.call('/fn/echo/')).status, 200);
  });

  it("tags the function's console output with its request id in the logs", async () => {
    const res = await node.call('/fn/echo/log?tag=t42');
    const requestId = res.headers.get('x-nimbus-request-id');
    const line = await eventually(async () => {
      const { logs } = await node.json('/api/v1/functions/echo/logs?limit=1000');
      return logs.find((l: any) => l.line === 'log line t42');
    });
    assert.equal(line.requestId, requestId);
    assert.equal(line.function, 'echo');
    assert.equal(line.revision, 'r1');
    assert.equal(line.stream, 'stdout');
  });
});
