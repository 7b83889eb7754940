/**
 * The app-mode part of the Runtime conformance suite (conformance.ts): any program serving HTTP
 * on $PORT, fronted by the in-instance watchdog. Registered by runRuntimeConformance unless the
 * provider opts out (`appMode: false`).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { PLATFORM_ERROR_HEADER } from '../core/errors.js';
import type { Instance, InstanceSpec, Runtime } from './types.js';

export interface AppModeSuite {
  /** The provider under test (made in the suite's `before`). */
  runtime: () => Runtime;
  spec: (entry: string, extra?: Partial<InstanceSpec>) => InstanceSpec;
  call: (instance: Instance, path: string, init?: RequestInit & { duplex?: 'half' }) => Promise<Response>;
  /** Response#json(), typed for reading known fixture answers. */
  json: (res: Response) => Promise<any>;
  startFails: (spec: InstanceSpec, message: RegExp) => Promise<void>;
  /** Directory of the app fixtures (server.py, server.mjs). */
  appsDir: string;
}

export function appModeConformance({ runtime, spec, call, json, startFails, appsDir }: AppModeSuite): void {
  describe('app mode', () => {
    const app = (command: string[]) => spec('', { kind: 'app', entry: undefined, command, artifactDir: appsDir });

    it('fronts a Python http.server app listening on $PORT', async () => {
      const py = await runtime().start(app(['python3', 'server.py']));
      after(() => runtime().stop(py.id));
      // http.server cannot read chunked bodies: a length the client declared must reach the app.
      const res = await call(py, '/py?x=1', { method: 'POST', body: 'hello', headers: { 'content-length': '5' } });
      assert.deepEqual(await res.json(), { lang: 'python', method: 'POST', path: '/py?x=1', body: 'hello' });
    });

    it('fronts a Node app listening on $PORT, with its env and a streamed answer', async () => {
      const node = await runtime().start(app(['node', 'server.mjs']));
      after(() => runtime().stop(node.id));
      const res = await call(node, '/x', { method: 'POST', body: 'b' });
      assert.equal(res.headers.get('x-app'), 'node');
      const body = await json(res);
      assert.deepEqual([body.lang, body.path, body.body, body.greeting], ['node', '/x', 'b', 'hi']);
      assert.match(body.port, /^\d+$/);
      assert.equal(await (await call(node, '/stream')).text(), 'one two three');
    });

    it('answers 502 INSTANCE_CRASHED when the app speaks malformed HTTP', async () => {
      const garbage = "require('net').createServer((s) => s.end('garbage\\r\\n\\r\\n')).listen(process.env.PORT)";
      const bad = await runtime().start(app(['node', '-e', garbage]));
      after(() => runtime().stop(bad.id));
      const res = await call(bad, '/');
      assert.deepEqual([res.status, res.headers.get(PLATFORM_ERROR_HEADER)], [502, 'NIMBUS_ERR_INSTANCE_CRASHED']);
    });

    it('answers 502 at once, not at the timeout, when the app switches protocols (101)', {
      timeout: 10_000,
    }, async () => {
      const upgrade =
        "require('net').createServer((s) => s.once('data', () => s.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n'))).listen(process.env.PORT)";
      const app101 = await runtime().start(app(['node', '-e', upgrade]));
      after(() => runtime().stop(app101.id));
      // Bounded, so a regression fails here instead of hanging the suite.
      const res = await call(app101, '/ws', { signal: AbortSignal.timeout(5000) });
      assert.deepEqual([res.status, res.headers.get(PLATFORM_ERROR_HEADER)], [502, 'NIMBUS_ERR_INSTANCE_CRASHED']);
      assert.match(await res.text(), /switched protocols \(101\)/);
    });

    it('carries an upgraded connection through tunnel(): the 101, then bytes both ways', {
      timeout: 10_000,
    }, async () => {
      const echo =
        "require('net').createServer((s) => s.once('data', () => { s.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n'); s.pipe(s); })).listen(process.env.PORT)";
      const app101 = await runtime().start(app(['node', '-e', echo]));
      after(() => runtime().stop(app101.id));
      assert.equal(typeof app101.tunnel, 'function', 'app-mode instances offer tunnel()');
      const tunnel = await app101.tunnel!();
      let seen = '';
      tunnel.setEncoding('utf8');
      const upTo = (text: string) =>
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if (!seen.includes(text)) return;
            tunnel.off('data', onData);
            resolve();
          };
          const onData = (chunk: string) => {
            seen += chunk;
            check();
          };
          tunnel.on('data', onData);
          tunnel.once('close', () => reject(new Error(`closed before ${JSON.stringify(text)}: ${seen}`)));
          check();
        });
      tunnel.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      await upTo('\r\n\r\n');
      assert.match(seen, /^HTTP\/1\.1 101 /);
      tunnel.write('ping after the switch');
      await upTo('ping after the switch');
      tunnel.destroy();
    });

    it('rejects START_FAILED when the app exits before listening', () =>
      startFails(
        app(['node', '-e', 'console.error("no config"); process.exit(3)']),
        /exited with code 3 before listening/,
      ));
  });
}
