import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually } from '../../../test/support/nimbus.js';
import { hasCode } from '../../core/errors.js';
import { runRuntimeConformance } from '../conformance.js';
import type { InstanceSpec, RuntimeEvent } from '../types.js';
import { createIsolateRuntime, type IsolateRuntime } from './index.js';

const runtimes: IsolateRuntime[] = [];
runRuntimeConformance(
  'isolate',
  () => {
    const r = createIsolateRuntime();
    runtimes.push(r);
    return r;
  },
  {
    functionsDir: join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'functions'),
    kind: 'isolate',
    appMode: false,
    lambda: false,
    crash: (instance) => runtimes.at(-1)!.terminate(instance.id, 'terminated by the test'),
  },
);

describe('isolate runtime', () => {
  // Loopback is off limits to isolates' fetch (outbound-guard.ts) but for the ports a test opens here.
  const loopbackPorts = new Set<number>();
  const runtime = createIsolateRuntime({
    outbound: { allow: (address, port) => address === '127.0.0.1' && loopbackPorts.has(port) },
  });
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-isolate-'));
  after(async () => {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let n = 0;
  const start = (code: string, extra: Partial<InstanceSpec> = {}) => {
    const entry = `fn${++n}.mjs`;
    writeFileSync(join(dir, entry), code);
    return runtime.start({
      id: extra.id ?? `iso-${n}`,
      function: 'f',
      revision: 'r1',
      kind: 'isolate',
      artifactDir: dir,
      entry,
      env: { A: '1' },
      memoryMb: 16,
      timeoutMs: 2000,
      ...extra,
    });
  };
  const get = (fn: { fetch(r: Request): Promise<Response> }, path = '/') =>
    fn.fetch(new Request(`http://fn.test${path}`));
  const stateOf = (id: string, state: string) =>
    new Promise<RuntimeEvent>((resolve) => {
      const off = runtime.subscribe((e) => {
        if (e.type === 'state' && e.id === id && e.state === state) {
          off();
          resolve(e);
        }
      });
    });

  it('gives the handler the web surface: URL, Headers, encoders, crypto, base64, timers', async () => {
    const fn = await start(`export default async (req, env) => {
      const u = new URL('/a/../b?x=1&y=two+words#h', req.url);
      const h = new Headers({ 'X-A': '1' }); h.append('x-a', '2');
      const bytes = new TextEncoder().encode('héllo €');
      await new Promise((r) => setTimeout(r, 5));
      return Response.json({
        href: u.href, y: u.searchParams.get('y'), h: h.get('x-a'),
        text: new TextDecoder().decode(bytes), n: bytes.length,
        uuid: /^[0-9a-f-]{36}$/.test(crypto.randomUUID()), b64: btoa('hi'), back: atob('aGk='),
        env: env.A, processEnv: process.env.A, json: structuredCloneMissing(),
      });
    };
    function structuredCloneMissing() { return typeof require === 'undefined' && typeof globalThis.process.exit === 'undefined'; }`);
    const body = await (await get(fn)).json();
    assert.deepEqual(body, {
      href: 'http://fn.test/b?x=1&y=two+words#h',
      y: 'two words',
      h: '1, 2',
      text: 'héllo €',
      n: 10,
      uuid: true,
      b64: 'aGk=',
      back: 'hi',
      env: '1',
      processEnv: '1',
      json: true,
    });
  });

  it('ends the instance OUT_OF_MEMORY at its memory limit', async () => {
    const fn = await start(`export default () => { const h = []; for (;;) h.push(new Array(1e5).fill(1)); }`);
    const failed = stateOf(fn.id, 'failed');
    await assert.rejects(get(fn), (err) => hasCode(err, 'NIMBUS_ERR_OUT_OF_MEMORY'));
    const event = await failed;
    assert.ok(event.type === 'state' && /ran out of memory/.test(event.exit!.reason));
    assert.ok(!runtime.list().includes(fn));
  });

  it('terminates a busy loop past the timeout and keeps serving other instances', async () => {
    const spin = await start(`export default () => { console.log('spinning'); for (;;) {} }`, { timeoutMs: 300 });
    const other = await start(`export default () => 'still here'`);
    const failed = stateOf(spin.id, 'failed');
    const spinning = new Promise<void>((resolve) => {
      const off = runtime.subscribe((e) => {
        if (e.type !== 'log' || e.id !== spin.id) return;
        off();
        resolve();
      });
    });
    const answer = get(spin);
    await spinning;
    // Sampling a busy isolate must not wait for it (that would block the watchdog's own thread).
    assert.ok(runtime.stats(spin.id));
    await assert.rejects(answer, (err) => hasCode(err, 'NIMBUS_ERR_TIMEOUT'));
    const event = await failed;
    assert.ok(event.type === 'state' && /CPU busy/.test(event.exit!.reason));
    assert.equal(await (await get(other)).text(), 'still here');
  });

  it('aborts request.signal inside the isolate when the caller goes away', async () => {
    const fn = await start(`export default (req) => new Promise(() => {
      req.signal.addEventListener('abort', () => console.log('aborted: ' + req.signal.reason.message));
      console.log('waiting');
    })`);
    const lines: string[] = [];
    const seen = new Promise<void>((resolve) => {
      const off = runtime.subscribe((e) => {
        if (e.type !== 'log' || e.id !== fn.id) return;
        lines.push(e.line);
        if (e.line.startsWith('aborted')) {
          off();
          resolve();
        }
      });
    });
    const controller = new AbortController();
    const pending = fn.fetch(new Request('http://fn.test/'), { signal: controller.signal });
    await eventually(() => lines.includes('waiting'), 10_000, 'the handler to wait');
    controller.abort(new Error('bye'));
    await assert.rejects(pending, /bye/);
    await seen;
    assert.ok(lines.includes('aborted: The request was cancelled'), lines.join('|'));
  });

  it('answers FUNCTION_ERROR, not a crash, for a response Node would refuse', async () => {
    const fn = await start(`export default () => {
      const r = new Response('x'); r.headers._flat = () => ['x-bad', 'a\\nb']; return r;
    }`);
    const res = await get(fn);
    assert.equal(res.status, 500);
    const errorOf = async (r: Response) => ((await r.json()) as { error: { message: string } }).error.message;
    assert.match(await errorOf(res), /response is invalid/);
    const direct = await start(`export default () => new Response('x', { headers: { 'x-a': 'a\\nb' } })`);
    assert.match(await errorOf(await get(direct)), /Invalid header value/);
  });

  it('keeps globals apart between instances', async () => {
    const code = `globalThis.count ??= 0; export default () => String(++globalThis.count);`;
    const a = await start(code);
    const b = await start(code);
    await get(a);
    assert.equal(await (await get(a)).text(), '2');
    assert.equal(await (await get(b)).text(), '1');
  });

  it('rejects START_FAILED for Lambda-style modules and imports', async () => {
    await assert.rejects(start(`export const handler = async () => ({ statusCode: 200 })`), /Lambda-style/);
    await assert.rejects(start(`import x from 'node:fs'; export default () => x`), /bundled module/);
  });

  it('stops an instance whose init is still running', async () => {
    const starting = start(`console.log('init'); for (;;) {} export default () => 'never'`, { id: 'iso-init-loop' });
    await new Promise<void>((resolve) => {
      const off = runtime.subscribe((e) => {
        if (e.type !== 'log' || e.id !== 'iso-init-loop') return;
        off();
        resolve();
      });
    });
    await runtime.stop('iso-init-loop');
    await assert.rejects(
      starting,
      (err) => hasCode(err, 'NIMBUS_ERR_START_FAILED') && /stopped while starting/.test(String(err)),
    );
    assert.ok(!runtime.list().some((i) => i.id === 'iso-init-loop'));
  });

  it('fails START_FAILED when the entry file is missing', () =>
    assert.rejects(
      runtime.start({
        id: 'iso-missing',
        function: 'f',
        revision: 'r1',
        kind: 'isolate',
        artifactDir: dir,
        entry: 'nope.mjs',
        env: {},
        memoryMb: 16,
        timeoutMs: 1000,
      }),
      (err) => hasCode(err, 'NIMBUS_ERR_START_FAILED') && /ENOENT/.test(String(err)),
    ));

  it('reports CPU time and heap per instance', async () => {
    const fn = await start(`export default () => 'x'`);
    await get(fn);
    runtime.stats(fn.id);
    await eventually(() => runtime.stats(fn.id)!.memoryBytes > 0, 10_000, 'a heap reading');
    assert.ok(runtime.stats(fn.id)!.cpuMs > 0);
  });

  it('fetches outbound through the host with egress', async () => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => res.writeHead(201, { 'x-up': 'yes' }).end(`${req.method} ${req.headers['x-in']} ${body}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    after(() => server.close());
    const { port } = server.address() as AddressInfo;
    loopbackPorts.add(port);
    const fn = await start(`export default async () => {
      const res = await fetch('http://127.0.0.1:${port}/up', { method: 'POST', body: 'payload', headers: { 'x-in': 'hdr' } });
      return Response.json({ status: res.status, up: res.headers.get('x-up'), text: await res.text() });
    }`);
    assert.deepEqual(await (await get(fn)).json(), { status: 201, up: 'yes', text: 'POST hdr payload' });
    const refused = await start(`export default async () => {
      try { await fetch('http://127.0.0.1:1/'); } catch (e) { return e.message; }
    }`);
    assert.match(await (await get(refused)).text(), /^fetch failed/, 'a failed fetch rejects inside the isolate only');
  });

  it('refuses outbound fetch to loopback and link-local addresses, whatever the name', async () => {
    const fn = await start(`export default async (request) => {
      const target = new URL(request.url).searchParams.get('to');
      try { await fetch(target); return 'fetched'; } catch (e) { return e.message; }
    }`);
    for (const to of ['http://127.0.0.1:2/', 'http://localhost:2/', 'http://[::1]:2/', 'http://169.254.169.254/x']) {
      const text = await (await get(fn, `/?to=${encodeURIComponent(to)}`)).text();
      assert.match(text, /^fetch: .* is off limits to isolates \((.* is a (local|link-local) address)/, to);
    }
    // A redirect is no way round: every hop connects through the same check.
    const redirector = createServer((_req, res) => res.writeHead(302, { location: 'http://127.0.0.1:2/' }).end());
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    after(() => redirector.close());
    const { port } = redirector.address() as AddressInfo;
    loopbackPorts.add(port);
    const text = await (await get(fn, `/?to=${encodeURIComponent(`http://127.0.0.1:${port}/`)}`)).text();
    assert.match(text, /^fetch: 127\.0\.0\.1 is off limits to isolates/);
  });

  it('refuses outbound fetch without egress', async () => {
    const fn = await start(
      `export default async () => { try { await fetch('http://127.0.0.1:1/'); } catch (e) { return e.message; } }`,
      {
        network: 'none',
      },
    );
    assert.match(await (await get(fn)).text(), /network: egress/);
  });
});
