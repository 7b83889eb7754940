// Function instances must not reach the node's control plane (src/gateway/instance-guard.ts, and
// for isolates src/runtime/isolate/outbound-guard.ts): a tenant with `network: egress` calling
// 127.0.0.1:PORT/api/v1 gets 403 NIMBUS_ERR_FORBIDDEN (process instances) or a refused fetch
// (isolates), while /fn/ stays open to it and the host's own clients keep full access.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { APPS, FIXTURES, startTestNode, type TestNode } from '../support/nimbus.js';

const GUARD = join(FIXTURES, 'guard');
const FORBIDDEN = 'NIMBUS_ERR_FORBIDDEN';

describe('control plane closed to function instances', () => {
  let node: TestNode;
  let local: Server;
  let localUrl: string;

  /** What `fn` got when it fetched `url` from inside its instance. */
  const probe = async (fn: string, url: string, method = 'GET') => {
    const res = await node.call(`/fn/${fn}/?${new URLSearchParams({ url, method })}`);
    assert.equal(res.status, 200, `${fn} itself answers`);
    return (await res.json()) as { status?: number; body?: string; error?: string };
  };
  const refusedByGuard = (got: { status?: number; body?: string }) => {
    assert.equal(got.status, 403, JSON.stringify(got));
    const { error } = JSON.parse(got.body!) as { error: { code: string; message: string } };
    assert.equal(error.code, FORBIDDEN);
    assert.match(error.message, /control-plane API does not accept requests from function instances/);
  };

  before(async () => {
    node = await startTestNode();
    // A service of the host's own on loopback (a database, say): not the node's to guard.
    local = createServer((_req, res) => res.end('local service'));
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
    localUrl = `http://127.0.0.1:${(local.address() as AddressInfo).port}/`;
    const deployments: [string, Record<string, unknown>][] = [
      [join(GUARD, 'victim'), {}],
      [join(GUARD, 'prober'), {}],
      [join(GUARD, 'prober'), { name: 'iso-prober', runtime: 'isolate' }],
      [join(APPS, 'py-egress'), { name: 'py-prober', snapshot: false }],
    ];
    for (const [dir, overrides] of deployments) {
      const { status, body } = await node.deploy(dir, overrides);
      assert.equal(status, 201, JSON.stringify(body));
    }
  });
  after(async () => {
    local.close();
    await node.dispose();
  });

  it('runs process instances as a uid of their own, so the guard is on', () => {
    assert.equal(node.sandbox?.sandboxed, true, node.sandbox?.warnings.join('; '));
  });

  it('refuses the API, /metrics and the dashboard to a sandboxed node function', async () => {
    refusedByGuard(await probe('prober', `${node.url}/api/v1/functions`));
    refusedByGuard(await probe('prober', `${node.url}/metrics`));
    refusedByGuard(await probe('prober', `${node.url}/`));
  });

  it('refuses a DELETE of another tenant, which keeps answering', async () => {
    refusedByGuard(await probe('prober', `${node.url}/api/v1/functions/victim`, 'DELETE'));
    assert.equal(await (await node.call('/fn/victim/')).text(), 'alive');
    const functions = (await node.json('/api/v1/functions')).functions.map((f: { name: string }) => f.name);
    assert.ok(functions.includes('victim'), 'the host still sees it through the API');
  });

  it('keeps the data plane and /healthz open to instances', async () => {
    assert.deepEqual(await probe('prober', `${node.url}/fn/victim/`), { status: 200, body: 'alive' });
    assert.equal((await probe('prober', `${node.url}/healthz`)).status, 200);
  });

  it('still lets process instances reach other loopback services (documented: only network: none stops that)', async () => {
    assert.deepEqual(await probe('prober', localUrl), { status: 200, body: 'local service' });
  });

  it('refuses the API to an app-mode instance (python)', async () => {
    const res = await node.call(`/fn/py-prober/fetch?${new URLSearchParams({ url: `${node.url}/api/v1/functions` })}`);
    const got = (await res.json()) as { ok: boolean; error?: string };
    assert.equal(got.ok, false, JSON.stringify(got));
    assert.match(got.error!, /HTTP Error 403/);
  });

  it('refuses an isolate fetch to the API and to loopback, with a clear error', async () => {
    for (const url of [`${node.url}/api/v1/functions`, localUrl, `${node.url}/fn/../api/v1/functions`]) {
      const got = await probe('iso-prober', url);
      assert.match(got.error ?? '', /^fetch: 127\.0\.0\.1 is off limits to isolates/, `${url}: ${JSON.stringify(got)}`);
    }
  });

  it("lets an isolate call other functions through the node's data plane", async () => {
    assert.deepEqual(await probe('iso-prober', `${node.url}/fn/victim/`), { status: 200, body: 'alive' });
    // The node by another local name on its port: still only its data plane.
    const port = new URL(node.url).port;
    assert.deepEqual(await probe('iso-prober', `http://localhost:${port}/fn/victim/`), { status: 200, body: 'alive' });
    const api = await probe('iso-prober', `http://localhost:${port}/api/v1/functions`);
    assert.match(api.error ?? '', /is off limits to isolates/, JSON.stringify(api));
  });

  it('keeps the API open to clients on the host', async () => {
    const res = await node.call('/api/v1/functions/victim');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { function: { name: string } }).function.name, 'victim');
  });
});
