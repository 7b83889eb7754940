// Issue 4, `runtime: isolate`: fetch handlers in V8 isolates inside the node, deployed and called
// through the real API and gateway. Limits end only the offending instance; the node keeps serving.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';

const HELLO = `
interface Env { GREETING: string }
export default {
  async fetch(request: Request, env: Env, ctx: { waitUntil(p: Promise<unknown>): void }) {
    const url = new URL(request.url);
    if (url.pathname.endsWith('/hog')) { const h: number[][] = []; for (;;) h.push(new Array(1e5).fill(1)); }
    if (url.pathname.endsWith('/spin')) { for (;;) {} }
    if (url.pathname.endsWith('/secret')) { (globalThis as any).secret = 'hello-only'; return new Response('set'); }
    ctx.waitUntil(Promise.resolve());
    console.log('handled', url.pathname);
    return Response.json({ greeting: env.GREETING, path: url.pathname, body: await request.text() });
  },
};
`;

/** A webhook receiver: a GitHub-signed JSON body, or a urlencoded / multipart form post. */
const WEBHOOK = `
const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
export default async (request: Request, env: { SECRET: string }) => {
  if (request.headers.get('x-hub-signature-256')) {
    const body = await request.arrayBuffer();
    const key = await crypto.subtle.importKey(
      'raw', new TextEncoder().encode(env.SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'],
    );
    const valid = request.headers.get('x-hub-signature-256') === 'sha256=' + hex(await crypto.subtle.sign('HMAC', key, body));
    return new Response(valid ? 'signed' : 'forged', { status: valid ? 200 : 401 });
  }
  const form = await request.formData();
  return Response.json([...form].map(([k, v]) => (typeof v === 'string' ? [k, v] : [k, v.name, v.size])));
};
`;

describe('runtime: isolate through a real node', () => {
  let node: TestNode;
  const deploy = async (name: string, files: Record<string, string>, config: Record<string, unknown> = {}) =>
    node.deploy(writeSource(files), { name, runtime: 'isolate', ...config });
  const platformError = async (res: Response) => ({
    status: res.status,
    header: res.headers.get('x-nimbus-error'),
    code: ((await res.json()) as { error: { code: string } }).error.code,
  });

  before(async () => {
    node = await startTestNode();
    for (const [name, config] of [
      ['iso-hello', { env: { GREETING: 'hi' }, memory: 64, timeout: 1 }],
      // Filling 64 MB can take over a second on a loaded machine: the memory limit must win, not the timeout.
      ['iso-hog', { env: { GREETING: 'hi' }, memory: 64, timeout: 30 }],
      ['iso-other', {}],
    ] as const) {
      const { status, body } = await deploy(
        name,
        name !== 'iso-other'
          ? { 'index.ts': HELLO }
          : { 'index.js': `export default () => Response.json({ secret: globalThis.secret ?? null })` },
        config,
      );
      assert.equal(status, 201, JSON.stringify(body));
    }
  });
  after(() => node.dispose());

  it('answers through /fn/NAME with its env, and its console lines reach the logs', async () => {
    const res = await node.call('/fn/iso-hello/greet', { method: 'POST', body: 'ping' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { greeting: 'hi', path: '/greet', body: 'ping' });
    await eventually(
      async () => {
        const { logs } = await node.json('/api/v1/functions/iso-hello/logs?limit=100');
        return logs.some((l: { line: string }) => l.line === 'handled /greet');
      },
      30_000,
      'the console line in nimbus logs',
    );
  });

  it('answers OUT_OF_MEMORY when the memory limit is exceeded, and the next request works', async () => {
    assert.deepEqual(await platformError(await node.call('/fn/iso-hog/hog')), {
      status: 502,
      header: 'NIMBUS_ERR_OUT_OF_MEMORY',
      code: 'NIMBUS_ERR_OUT_OF_MEMORY',
    });
    assert.equal((await node.call('/fn/iso-hog/after')).status, 200);
  });

  it('answers TIMEOUT for a busy loop while another function keeps answering', async () => {
    const spinning = node.call('/fn/iso-hello/spin');
    assert.equal((await node.call('/fn/iso-other/')).status, 200, 'served while the loop runs');
    const err = await platformError(await spinning);
    assert.deepEqual([err.status, err.code], [504, 'NIMBUS_ERR_TIMEOUT']);
    assert.equal((await node.call('/fn/iso-hello/again')).status, 200, 'a fresh instance serves next');
  });

  it('keeps each function’s globals to itself', async () => {
    assert.equal(await (await node.call('/fn/iso-hello/secret')).text(), 'set');
    assert.deepEqual(await node.json('/fn/iso-other/'), { secret: null });
  });

  it('shows each isolate instance’s heap and CPU time in the instance list', async () => {
    assert.equal((await node.call('/fn/iso-other/')).status, 200);
    const usage = await eventually(
      async () => {
        const { instances } = await node.json('/api/v1/functions/iso-other/instances');
        return instances.find((i: { usage?: { memoryBytes: number } }) => (i.usage?.memoryBytes ?? 0) > 0)?.usage;
      },
      30_000,
      'a usage sample with memory',
    );
    assert.ok(usage.memoryBytes < 64 * 1024 * 1024 && usage.cpuMs > 0, JSON.stringify(usage));
  });

  it('verifies a GitHub webhook signature with crypto.subtle and reads form posts', async () => {
    const { status, body } = await deploy('iso-webhook', { 'index.ts': WEBHOOK }, { env: { SECRET: 'shh' } });
    assert.equal(status, 201, JSON.stringify(body));
    const payload = JSON.stringify({ action: 'opened' });
    const signature = `sha256=${createHmac('sha256', 'shh').update(payload).digest('hex')}`;
    const post = (headers: Record<string, string>, b: string | FormData = payload) =>
      node.call('/fn/iso-webhook/hook', { method: 'POST', headers, body: b });
    assert.equal(await (await post({ 'x-hub-signature-256': signature })).text(), 'signed');
    assert.equal((await post({ 'x-hub-signature-256': `${signature.slice(0, -1)}0` })).status, 401);
    const urlencoded = await post(
      { 'content-type': 'application/x-www-form-urlencoded' },
      'name=J%C3%BCrgen+K&tags=a&tags=b',
    );
    assert.deepEqual(await urlencoded.json(), [
      ['name', 'Jürgen K'],
      ['tags', 'a'],
      ['tags', 'b'],
    ]);
    const form = new FormData();
    form.append('note', 'hi');
    form.append('upload', new Blob(['12345']), 'five.txt');
    assert.deepEqual(await (await post({}, form)).json(), [
      ['note', 'hi'],
      ['upload', 'five.txt', 5],
    ]);
  });

  it('rejects Lambda-style handlers and app mode at deploy', async () => {
    const lambda = await deploy('iso-lambda', {
      'index.js': 'export const handler = async () => ({ statusCode: 200 })',
    });
    assert.equal(lambda.body.error.code, 'NIMBUS_ERR_HANDLER_NOT_FOUND');
    assert.match(lambda.body.error.message, /runtime isolate runs fetch handlers only/);
    const app = await deploy('iso-app', { 'server.py': '' }, { command: ['python3', 'server.py'] });
    assert.equal(app.body.error.code, 'NIMBUS_ERR_INVALID_MANIFEST');
    assert.match(app.body.error.message, /command: only used with runtime app \(this is runtime isolate\)/);
  });

  it('rejects a bundle that imports Node built-ins', async () => {
    const res = await deploy('iso-fs', {
      'index.js': "import { readFileSync } from 'node:fs'; export default () => readFileSync",
    });
    assert.equal(res.body.error.code, 'NIMBUS_ERR_BUILD_FAILED');
  });
});

describe('isolate density', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(() => node.dispose());

  it('holds 1,000 idle isolate instances and still answers', async () => {
    const { status, body } = await node.deploy(writeSource({ 'index.js': 'export default () => "idle"' }), {
      name: 'iso-dense',
      runtime: 'isolate',
      memory: 64,
      scale: { min: 1000, max: 1000 },
    });
    assert.equal(status, 201, JSON.stringify(body));
    await eventually(
      async () => {
        const { instances } = await node.json('/api/v1/functions/iso-dense/instances');
        return instances.filter((i: { state: string }) => i.state === 'ready').length >= 1000;
      },
      120_000,
      '1,000 ready isolate instances',
    );
    assert.equal(await (await node.call('/fn/iso-dense/')).text(), 'idle');
    assert.equal((await node.call('/healthz')).status, 200);
  });
});
