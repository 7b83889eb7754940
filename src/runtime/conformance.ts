/**
 * The conformance suite every Runtime provider must pass (after virtual-kubelet's and hono's
 * shared suites): real instances of the fixture functions in test/fixtures/functions, driven
 * through the contract only. Call it from a provider's test file; it registers node:test tests.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { hasCode, PLATFORM_ERROR_HEADER } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { packageRoot } from '../core/package-root.js';
import { createLazyRequest } from './channel/index.js';
import { appModeConformance } from './conformance-app.js';
import {
  DEADLINE_HEADER,
  type Instance,
  type InstanceSpec,
  REQUEST_ID_HEADER,
  type Runtime,
  type RuntimeEvent,
} from './types.js';

/** Where the suite finds its fixtures, and which optional parts of the contract to test. */
export interface ConformanceFixtures {
  /**
   * Directory holding echo.mjs, plain-default.mjs, lambda.mjs, lambda-callback.mjs,
   * init-throws.mjs, no-handler.mjs and apps/server.{py,mjs}. Default: test/fixtures/functions.
   */
  functionsDir: string;
  /** Run the app-mode tests (`kind: 'app'`). Default true. */
  appMode?: boolean;
  /** Run the Lambda-style tests (`export const handler`). Default true. */
  lambda?: boolean;
  /** The `kind` of the web-standard fixtures' specs. Default 'node'. */
  kind?: InstanceSpec['kind'];
  /** Ends an instance as a crash would. Default: SIGKILL to its pid (and the exit must say so). */
  crash?: (instance: Instance) => void;
}

/** Registers the conformance tests for the provider that `makeRuntime` creates. */
export function runRuntimeConformance(
  name: string,
  makeRuntime: () => Runtime | Promise<Runtime>,
  fixtures: ConformanceFixtures = { functionsDir: join(packageRoot(), 'test', 'fixtures', 'functions') },
): void {
  describe(`Runtime conformance: ${name}`, () => {
    let runtime: Runtime;
    before(async () => {
      runtime = await makeRuntime();
    });
    after(() => runtime.close());

    const spec = (entry: string, extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
      id: newId('conf'),
      function: 'conformance',
      revision: 'r1',
      kind: fixtures.kind ?? 'node',
      artifactDir: fixtures.functionsDir,
      entry,
      env: { GREETING: 'hi' },
      memoryMb: 128,
      timeoutMs: 5000,
      ...extra,
    });
    // Response#json() is typed `unknown`: the suite reads known fixture answers.
    const json = (res: Response): Promise<any> => res.json();
    const call = (instance: Instance, path: string, init: RequestInit & { duplex?: 'half' } = {}) =>
      instance.fetch(new Request(`http://fn.test${path}`, init));
    /** The first event matching `match` (subscribe before causing it). */
    const nextEvent = (match: (e: RuntimeEvent) => boolean) =>
      new Promise<RuntimeEvent>((resolve) => {
        const off = runtime.subscribe((e) => {
          if (match(e)) {
            off();
            resolve(e);
          }
        });
      });
    const startFails = async (s: InstanceSpec, message: RegExp) => {
      await assert.rejects(runtime.start(s), (err: Error) => {
        assert.ok(hasCode(err, 'NIMBUS_ERR_START_FAILED'), `expected START_FAILED, got ${err}`);
        assert.match(err.message, message);
        return true;
      });
      assert.ok(!runtime.list().some((i) => i.id === s.id), 'a failed start leaves nothing running');
    };

    describe('web-standard functions', () => {
      let echo: Instance;
      before(async () => {
        echo = await runtime.start(spec('echo.mjs'));
      });
      after(() => runtime.stop(echo.id));

      it('starts ready and echoes method, path, query, headers, body and env', async () => {
        assert.equal(echo.state, 'ready');
        const res = await call(echo, '/hello?name=nimbus', {
          method: 'POST',
          body: 'ping',
          headers: { 'x-test': 'yes', [REQUEST_ID_HEADER]: 'req-echo', [DEADLINE_HEADER]: String(Date.now() + 5000) },
        });
        assert.equal(res.status, 200);
        const body = await json(res);
        assert.deepEqual(
          [body.method, body.path, body.query, body.body, body.host],
          ['POST', '/hello', { name: 'nimbus' }, 'ping', 'fn.test'],
        );
        assert.equal(body.headers['x-test'], 'yes');
        assert.equal(body.headers[REQUEST_ID_HEADER], 'req-echo', 'the request id stays visible');
        assert.equal(body.headers[DEADLINE_HEADER], undefined, 'the deadline header is stripped');
        assert.equal(body.requestId, 'req-echo');
        assert.deepEqual(body.env, { GREETING: 'hi' }, 'env holds the function env only');
      });

      it('streams the request and response bodies both ways, chunk by chunk', async () => {
        let push!: (text: string | null) => void;
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            push = (text) => (text === null ? controller.close() : controller.enqueue(new TextEncoder().encode(text)));
          },
        });
        push('abc');
        const res = await call(echo, '/duplex', { method: 'POST', body, duplex: 'half' });
        const reader = res.body!.getReader();
        const read = async () => new TextDecoder().decode((await reader.read()).value);
        // The second chunk is sent only after the first answer came back: nothing is buffered whole.
        assert.equal(await read(), 'ABC');
        push('def');
        assert.equal(await read(), 'DEF');
        push(null);
        assert.equal((await reader.read()).done, true);
      });

      // The gateway sends lazy Requests (runtime/channel): every provider must serve them like
      // complete ones, whether it moves their Node streams as they are or reads them as web objects.
      it('serves a lazy Request (what the gateway sends) like a complete one', async () => {
        const res = await echo.fetch(
          createLazyRequest({
            method: 'PUT',
            host: 'fn.test',
            path: '/lazy?x=1',
            headers: ['x-test', 'lazy', REQUEST_ID_HEADER, 'req-lazy'],
            body: new PassThrough().end('lazy body'),
          }),
        );
        const body = await json(res);
        assert.deepEqual(
          [body.method, body.path, body.query, body.body, body.host, body.headers['x-test'], body.requestId],
          ['PUT', '/lazy', { x: '1' }, 'lazy body', 'fn.test', 'lazy', 'req-lazy'],
        );
      });

      it('streams a lazy Request body and the answer chunk by chunk', async () => {
        const input = new PassThrough();
        input.write('abc');
        const res = await echo.fetch(
          createLazyRequest({ method: 'POST', host: 'fn.test', path: '/duplex', headers: [], body: input }),
        );
        const reader = res.body!.getReader();
        const read = async () => new TextDecoder().decode((await reader.read()).value);
        assert.equal(await read(), 'ABC');
        input.write('def');
        assert.equal(await read(), 'DEF');
        input.end();
        assert.equal((await reader.read()).done, true);
      });

      it('rejects with the abort reason when a lazy Request is aborted', async () => {
        const controller = new AbortController();
        const hanging = nextEvent((e) => e.type === 'log' && e.id === echo.id && e.line === 'hanging now');
        const pending = echo.fetch(
          createLazyRequest({ method: 'GET', host: 'fn.test', path: '/hang', headers: [], body: null }),
          { signal: controller.signal },
        );
        await hanging;
        const reason = new Error('client went away');
        controller.abort(reason);
        await assert.rejects(pending, (err) => err === reason);
      });

      it('serves concurrent requests on one instance', async () => {
        const answers = await Promise.all([1, 2, 3, 4].map(() => call(echo, '/barrier?n=4').then((r) => r.json())));
        assert.deepEqual(answers, Array(4).fill({ together: 4 }));
      });

      it('answers 500 with x-nimbus-error when the handler throws', async () => {
        const res = await call(echo, '/throw');
        assert.equal(res.status, 500);
        assert.equal(res.headers.get(PLATFORM_ERROR_HEADER), 'NIMBUS_ERR_FUNCTION_ERROR');
        assert.deepEqual(await res.json(), {
          error: { code: 'NIMBUS_ERR_FUNCTION_ERROR', message: 'boom in handler' },
        });
      });

      it('passes null-body statuses and repeated set-cookie headers through', async () => {
        const empty = await call(echo, '/no-content');
        assert.deepEqual([empty.status, empty.headers.get('x-empty'), await empty.text()], [204, 'yes', '']);
        const res = await call(echo, '/cookies');
        assert.equal(res.status, 201);
        assert.deepEqual(res.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/']);
      });

      it('tags console lines printed while serving with the request id', async () => {
        type LogEvent = Extract<RuntimeEvent, { type: 'log' }>;
        const lines: LogEvent[] = [];
        const off = runtime.subscribe((e) => e.type === 'log' && e.id === echo.id && lines.push(e));
        const lastOf = (stream: string, line: string) =>
          nextEvent((e) => e.type === 'log' && e.id === echo.id && e.stream === stream && e.line === line);
        const seen = Promise.all([lastOf('stdout', 'raw write'), lastOf('stderr', 'second line')]);
        await (await call(echo, '/log', { headers: { [REQUEST_ID_HEADER]: 'req-log' } })).text();
        await seen;
        off();
        const pick = (line: string) => lines.find((e) => e.line === line);
        assert.deepEqual(
          [pick('hello from the handler')?.stream, pick('hello from the handler')?.requestId],
          ['stdout', 'req-log'],
        );
        assert.deepEqual([pick('first line')?.stream, pick('first line')?.requestId], ['stderr', 'req-log']);
        assert.equal(pick('second line')?.requestId, 'req-log', 'every line of a multi-line print is tagged');
        assert.equal(pick('raw write')?.requestId, undefined, 'raw stdout writes carry no request id');
      });

      it('turns plain return values into responses', async () => {
        const fn = await runtime.start(spec('plain-default.mjs'));
        try {
          const text = await call(fn, '/text');
          assert.match(text.headers.get('content-type') ?? '', /^text\/plain/);
          assert.equal(await text.text(), 'hello hi');
          const json = await call(fn, '/obj');
          assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
          assert.deepEqual(await json.json(), { greeting: 'hi', pathname: '/obj' });
        } finally {
          await runtime.stop(fn.id);
        }
      });
    });

    // Providers without Lambda-style handlers (fixtures.lambda false) do not register these.
    const lambdaDescribe = fixtures.lambda === false ? ((() => {}) as unknown as typeof describe) : describe;
    lambdaDescribe('Lambda-style functions', () => {
      let fn: Instance;
      before(async () => {
        fn = await runtime.start(spec('lambda.mjs', { function: 'lam', revision: 'r7' }));
      });
      after(() => runtime.stop(fn.id));

      it('receives an API Gateway payload v2.0 event and a context', async () => {
        const res = await call(fn, '/event?a=1&a=2&b=x', {
          method: 'POST',
          body: '{"k":1}',
          headers: {
            'content-type': 'application/json',
            cookie: 'c1=v1; c2=v2',
            'X-Multi': 'one',
            [REQUEST_ID_HEADER]: 'req-lam',
            [DEADLINE_HEADER]: String(Date.now() + 3000),
          },
        });
        const { event, context } = await json(res);
        assert.equal(event.version, '2.0');
        assert.equal(event.routeKey, '$default');
        assert.deepEqual([event.rawPath, event.rawQueryString], ['/event', 'a=1&a=2&b=x']);
        assert.deepEqual(event.queryStringParameters, { a: '1,2', b: 'x' });
        assert.deepEqual(event.cookies, ['c1=v1', 'c2=v2']);
        assert.equal(event.headers['x-multi'], 'one', 'header names are lowercased');
        assert.equal(event.headers.cookie, undefined);
        assert.deepEqual([event.body, event.isBase64Encoded], ['{"k":1}', false]);
        assert.deepEqual(
          [event.requestContext.http.method, event.requestContext.http.path, event.requestContext.stage],
          ['POST', '/event', '$default'],
        );
        assert.equal(event.requestContext.requestId, 'req-lam');
        assert.equal(typeof event.requestContext.timeEpoch, 'number');
        assert.deepEqual(
          [context.functionName, context.functionVersion, context.awsRequestId, context.memoryLimitInMB],
          ['lam', 'r7', 'req-lam', '128'],
        );
        assert.ok(
          context.remaining > 0 && context.remaining <= 3000,
          `remaining time from the deadline: ${context.remaining}`,
        );
      });

      it('encodes binary request bodies as base64', async () => {
        const res = await call(fn, '/event', {
          method: 'POST',
          body: new Uint8Array([0, 255, 1]),
          headers: { 'content-type': 'application/octet-stream' },
        });
        const { event } = await json(res);
        assert.deepEqual([event.body, event.isBase64Encoded], [Buffer.from([0, 255, 1]).toString('base64'), true]);
      });

      it('maps statusCode, headers, cookies and base64 bodies to HTTP', async () => {
        const res = await call(fn, '/mapped');
        assert.deepEqual([res.status, res.headers.get('x-custom'), await res.text()], [201, 'yes', 'created']);
        assert.deepEqual(res.headers.getSetCookie(), ['session=abc; HttpOnly', 'theme=dark']);
        const bin = await call(fn, '/binary');
        assert.deepEqual([...new Uint8Array(await bin.arrayBuffer())], [0, 1, 2, 255]);
      });

      it('serialises a plain return value as JSON with status 200', async () => {
        const res = await call(fn, '/plain');
        assert.deepEqual(
          [res.status, res.headers.get('content-type'), await res.json()],
          [200, 'application/json', { hello: 'world' }],
        );
      });

      it('answers 500 with x-nimbus-error when the handler throws', async () => {
        const res = await call(fn, '/throw');
        assert.equal(res.headers.get(PLATFORM_ERROR_HEADER), 'NIMBUS_ERR_FUNCTION_ERROR');
        assert.deepEqual([res.status, (await json(res)).error.message], [500, 'lambda exploded']);
      });

      it('runs callback-style handlers', async () => {
        const cb = await runtime.start(spec('lambda-callback.mjs'));
        after(() => runtime.stop(cb.id));
        assert.equal(await (await call(cb, '/', { method: 'PUT', body: 'x' })).text(), 'callback PUT');
      });
    });

    describe('lifecycle', () => {
      it('rejects START_FAILED with the message when the module throws at init', () =>
        startFails(spec('init-throws.mjs'), /init exploded: missing DATABASE_URL/));

      it('rejects START_FAILED when the module exports no handler', () =>
        startFails(spec('no-handler.mjs'), /neither `default` nor `handler`/));

      it('rejects INSTANCE_CRASHED and reports failed when the instance dies mid-request', async () => {
        const fn = await runtime.start(spec('echo.mjs'));
        const hanging = nextEvent((e) => e.type === 'log' && e.id === fn.id && e.line === 'hanging now');
        const failed = nextEvent((e) => e.type === 'state' && e.id === fn.id && e.state === 'failed');
        const pending = call(fn, '/hang');
        await hanging;
        if (fixtures.crash) fixtures.crash(fn);
        else {
          assert.ok(fn.pid, 'a process provider exposes the pid');
          process.kill(fn.pid, 'SIGKILL');
        }
        await assert.rejects(pending, (err) => hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED'));
        const event = await failed;
        assert.ok(event.type === 'state' && event.exit && !event.exit.expected);
        if (!fixtures.crash) assert.equal(event.exit.signal, 'SIGKILL');
        assert.ok(!runtime.list().includes(fn));
        await assert.rejects(call(fn, '/'), (err) => hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED'));
      });

      it('rejects with the abort reason when the caller aborts a request', async () => {
        const fn = await runtime.start(spec('echo.mjs'));
        after(() => runtime.stop(fn.id));
        const controller = new AbortController();
        const hanging = nextEvent((e) => e.type === 'log' && e.id === fn.id && e.line === 'hanging now');
        const pending = fn.fetch(new Request('http://fn.test/hang'), { signal: controller.signal });
        await hanging;
        const reason = new Error('caller gave up');
        controller.abort(reason);
        await assert.rejects(pending, (err) => err === reason);
        assert.equal((await call(fn, '/text')).status, 200, 'the instance still serves');
      });

      it('lets in-flight requests finish on a graceful stop', async () => {
        const fn = await runtime.start(spec('echo.mjs'));
        const started = nextEvent((e) => e.type === 'log' && e.id === fn.id && e.line === 'slow started');
        const pending = call(fn, '/slow');
        await started;
        const stopping = runtime.stop(fn.id, { graceMs: 5000 });
        assert.equal(await (await pending).text(), 'slow done');
        await stopping;
        assert.equal(fn.state, 'stopped');
      });

      it('lists live instances; stop is idempotent and ignores unknown ids', async () => {
        const a = await runtime.start(spec('echo.mjs'));
        assert.ok(runtime.list().some((i) => i.id === a.id));
        const stopped = nextEvent((e) => e.type === 'state' && e.id === a.id && e.state === 'stopped');
        await Promise.all([runtime.stop(a.id), runtime.stop(a.id)]);
        await runtime.stop(a.id);
        await runtime.stop('no-such-instance');
        const event = await stopped;
        assert.ok(event.type === 'state' && event.exit?.expected);
        assert.ok(!runtime.list().some((i) => i.id === a.id));
        assert.equal(a.state, 'stopped');
      });
    });

    if (fixtures.appMode !== false)
      appModeConformance({
        runtime: () => runtime,
        spec,
        call,
        json,
        startFails,
        appsDir: join(fixtures.functionsDir, 'apps'),
      });
  });
}
