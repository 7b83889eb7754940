import assert from 'node:assert/strict';
import { type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { APPS, eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';
import { openSocket } from '../support/websocket.js';

/** Sends an upgrade request by hand: resolves with the answer when it is not a 101. */
function upgradeRequest(
  url: string,
  path: string,
  protocol = 'websocket',
): Promise<{ res: IncomingMessage; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, {
      headers: {
        connection: 'Upgrade',
        upgrade: protocol,
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.once('upgrade', (_res, socket) => {
      socket.destroy();
      reject(new Error('switched protocols'));
    });
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.once('end', () => resolve({ res, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('WebSocket and other protocol upgrades (real node, a Python app)', () => {
  let node: TestNode;
  let ws: string;
  const instances = async () => (await node.json('/api/v1/functions/ws-echo')).instances as any[];

  before(async () => {
    node = await startTestNode();
    const deployed = await node.deploy(join(APPS, 'ws-echo'), { scale: { idleTimeout: 1 } });
    assert.equal(deployed.status, 201, JSON.stringify(deployed.body));
    const hello = writeSource({
      'index.js': 'export default { fetch: () => new Response("hi") };',
      'nimbus.yaml': 'name: plain\n',
    });
    assert.equal((await node.deploy(hello)).status, 201);
    ws = node.url.replace(/^http/, 'ws');
  });
  after(() => node.dispose().catch(() => {}));

  it('carries a WebSocket to an app-mode function both ways, with path, query and forwarding headers', async () => {
    const { ws: socket, next, closed } = await openSocket(`${ws}/fn/ws-echo/chat/room?x=1`);
    socket.send('hello');
    assert.equal(await next(), 'echo: hello');
    socket.send('who');
    const seen = await next();
    assert.match(seen, /^path=\/chat\/room\?x=1 request-id=[0-9a-f-]{36} forwarded-for=127\.0\.0\.1 traceparent=-$/);
    // The open connection holds its slot: the instance is busy, and idleTimeout (1 s) cannot stop it.
    const [busy] = await instances();
    assert.equal(busy.inFlight, 1);
    assert.match(await (await node.call('/metrics')).text(), /^nimbus_upgraded_connections\{function="ws-echo"\} 1$/m);
    socket.send('x'.repeat(70_000));
    assert.equal(await next(), `echo: ${'x'.repeat(70_000)}`);
    socket.close(1000);
    await closed;
    await eventually(
      async () =>
        !/^nimbus_upgraded_connections\{function="ws-echo"\}/m.test(await (await node.call('/metrics')).text()),
      10_000,
      'the gauge to drop the closed connection',
    );
    // Released once closed, then scaled to zero as any idle instance.
    await eventually(async () => (await instances()).length === 0, 15_000, 'scale to zero after the close');
    // The next one starts the app again (a cold start through the upgrade path).
    const again = await openSocket(`${ws}/fn/ws-echo/`);
    again.ws.send('again');
    assert.equal(await again.next(), 'echo: again');
    again.ws.close(1000);
    await again.closed;
  });

  it('records the upgrade as one invocation with status 101 in the request log', async () => {
    const { ws: socket, next, closed } = await openSocket(`${ws}/fn/ws-echo/logged`);
    socket.send('who');
    const requestId = /request-id=(\S+)/.exec(await next())![1];
    socket.close(1000);
    await closed;
    const record = await eventually(async () => {
      const { logs } = await node.json(`/api/v1/functions/ws-echo/logs?request=${requestId}`);
      return logs.find((l: any) => l.stream === 'request');
    });
    assert.equal(record.status, 101);
    // The connection's life goes to its own histogram, never into the requests' latency.
    const metrics = await (await node.call('/metrics')).text();
    const sum = (pattern: RegExp) => [...metrics.matchAll(pattern)].reduce((total, m) => total + Number(m[1]), 0);
    const upgrades = sum(/^nimbus_invocations_total\{function="ws-echo",[^}]*status="1xx"[^}]*\} (\d+)$/gm);
    const all = sum(/^nimbus_invocations_total\{function="ws-echo",[^}]*\} (\d+)$/gm);
    assert.ok(upgrades >= 1, metrics);
    assert.equal(
      sum(/^nimbus_upgraded_connection_duration_seconds_count\{function="ws-echo"[^}]*\} (\d+)$/gm),
      upgrades,
    );
    assert.equal(sum(/^nimbus_invocation_duration_seconds_count\{function="ws-echo"[^}]*\} (\d+)$/gm), all - upgrades);
  });

  it("passes the app's refusal through, and serves the same app's plain requests as usual", async () => {
    const { res, body } = await upgradeRequest(node.url, '/fn/ws-echo/refuse');
    assert.equal(res.statusCode, 426);
    assert.equal(body, 'no websocket here');
    assert.equal(await (await node.call('/fn/ws-echo/plain')).text(), 'plain http');
  });

  it('answers 504 when the app does not answer the upgrade within the timeout, 502 when it hangs up', async () => {
    assert.equal((await node.deploy(join(APPS, 'ws-echo'), { name: 'ws-slow', timeout: 1 })).status, 201);
    const silent = await upgradeRequest(node.url, '/fn/ws-slow/silent');
    assert.equal(silent.res.statusCode, 504);
    assert.equal(silent.res.headers['x-nimbus-error'], 'NIMBUS_ERR_TIMEOUT');
    assert.match(JSON.parse(silent.body).error.message, /did not answer the upgrade within its timeout of 1 s/);
    const dropped = await upgradeRequest(node.url, '/fn/ws-slow/drop');
    assert.equal(dropped.res.statusCode, 502);
    assert.equal(dropped.res.headers['x-nimbus-error'], 'NIMBUS_ERR_INSTANCE_CRASHED');
  });

  it('answers 501 for a function that is not an app, 404 for an unknown one, with the platform tag', async () => {
    const plain = await upgradeRequest(node.url, '/fn/plain/');
    assert.equal(plain.res.statusCode, 501);
    assert.equal(plain.res.headers['x-nimbus-error'], 'NIMBUS_ERR_UPGRADE_UNSUPPORTED');
    assert.match(JSON.parse(plain.body).error.message, /cannot switch protocols: runtime node .* needs runtime app/);
    const missing = await upgradeRequest(node.url, '/fn/nope/');
    assert.equal(missing.res.statusCode, 404);
    assert.equal(missing.res.headers['x-nimbus-error'], 'NIMBUS_ERR_FUNCTION_NOT_FOUND');
  });

  it('ignores an upgrade offer elsewhere (curl --http2 offers h2c): the API answers as HTTP/1.1', async () => {
    const health = await upgradeRequest(node.url, '/healthz', 'h2c');
    assert.equal(health.res.statusCode, 200);
    const list = await upgradeRequest(node.url, '/api/v1/functions', 'h2c');
    assert.equal(list.res.statusCode, 200);
    assert.ok(JSON.parse(list.body).functions.some((f: any) => f.name === 'ws-echo'));
  });

  it("deleting the function ends its open WebSockets (a deleted app stops serving), not the others'", async () => {
    assert.equal((await node.deploy(join(APPS, 'ws-echo'), { name: 'ws-gone' })).status, 201);
    const doomed = await openSocket(`${ws}/fn/ws-gone/`);
    const other = await openSocket(`${ws}/fn/ws-echo/`);
    assert.equal((await node.call('/api/v1/functions/ws-gone', { method: 'DELETE' })).status, 200);
    // Bounded, so a regression fails here instead of holding the file to its timeout.
    const ended = await Promise.race([doomed.closed, new Promise((r) => setTimeout(r, 10_000, 'still open'))]);
    assert.equal(ended, 1006);
    other.ws.send('still open');
    assert.equal(await other.next(), 'echo: still open');
    other.ws.close(1000);
    await other.closed;
  });

  it('a shutdown ends open WebSockets instead of waiting for them', async () => {
    const { ws: socket, next, closed } = await openSocket(`${ws}/fn/ws-echo/`);
    socket.send('still here');
    assert.equal(await next(), 'echo: still here');
    await node.close();
    assert.equal(await closed, 1006);
  });
});
