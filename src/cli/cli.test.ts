import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { packageRoot } from '../core/package-root.js';
import { runCli } from './index.js';

/*
 * runCli in-process against a stand-in server that answers as docs/api.md says. It pins the CLI's
 * side of the contract (query, headers, output, exit codes) without the real node; the real one
 * is exercised by test/cli.e2e.test.ts.
 */

interface Seen {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

const NOW = Date.parse('2025-01-01T12:00:00Z');
const summary = {
  name: 'hello',
  latestRevision: 'r1',
  revisionCount: 1,
  createdAt: '2025-01-01T11:00:00Z',
  updatedAt: '2025-01-01T11:58:00Z',
  runtime: 'node',
  url: 'http://x/fn/hello/',
  instances: { ready: 1, starting: 0, busy: 0 },
};
const record = (line: string, requestId?: string) => ({
  time: '2025-01-01T11:59:00.000Z',
  function: 'hello',
  revision: 'r1',
  instance: 'i1',
  ...(requestId ? { requestId } : {}),
  stream: 'stdout',
  line,
});

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

function answer(seen: Seen, res: ServerResponse) {
  const { method, url } = seen;
  const path = url.pathname;
  if (method === 'POST' && path === '/api/v1/functions') {
    const config = JSON.parse(url.searchParams.get('config') ?? '{}');
    if (config.name === 'broken') {
      const error = {
        code: 'NIMBUS_ERR_BUILD_FAILED',
        message: 'Build failed:\nExpected ";"',
        details: { file: 'index.ts', line: 3, column: 7 },
      };
      return sendJson(res, 400, { error });
    }
    const created = config.name !== 'same';
    const body = {
      function: config.name ?? url.searchParams.get('name'),
      revision: 'r1',
      created,
      digest: 'ab'.repeat(32),
      url: 'http://x/fn/hello/',
    };
    return sendJson(res, created ? 201 : 200, body);
  }
  if (method === 'GET' && path === '/api/v1/functions') return sendJson(res, 200, { functions: [summary] });
  if (path === '/api/v1/functions/missing' || path === '/fn/missing/') {
    const error = { code: 'NIMBUS_ERR_FUNCTION_NOT_FOUND', message: 'Function missing not found' };
    return sendJson(res, 404, { error }, path.startsWith('/fn/') ? { 'x-nimbus-error': error.code } : {});
  }
  if (method === 'DELETE' && path === '/api/v1/functions/hello') return sendJson(res, 200, { deleted: 'hello' });
  if (path === '/api/v1/functions/hello/logs' && url.searchParams.get('follow') === 'true') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    // Split an event across writes and add a keep-alive comment: the reader must reassemble.
    const event = `data: ${JSON.stringify(record('first', 'q1'))}\n\n`;
    res.write(': keep-alive\n\n');
    res.write(event.slice(0, 20));
    res.end(`${event.slice(20)}data: ${JSON.stringify(record('second'))}\r\n\r\n`);
    return;
  }
  if (path === '/api/v1/functions/hello/logs')
    return sendJson(res, 200, { logs: [record('booted'), record('hi', 'q1')] });
  if (path.startsWith('/fn/hello/')) {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-nimbus-request-id': 'q1' });
    return void res.end(`${method} ${url.pathname}${url.search} ${seen.body.toString()}`);
  }
  if (path.startsWith('/fn/teapot/'))
    return void res.writeHead(418, { 'content-type': 'text/plain' }).end('short and stout');
  sendJson(res, 404, { error: { code: 'NIMBUS_ERR_ROUTE_NOT_FOUND', message: `No route ${path}` } });
}

describe('nimbus CLI against the API contract', () => {
  const requests: Seen[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const seen = {
      method: req.method ?? 'GET',
      url: new URL(req.url ?? '/', 'http://x'),
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    requests.push(seen);
    answer(seen, res);
  });
  let url = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function run(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (c) => out.push(c));
    stderr.on('data', (c) => err.push(c));
    const before = requests.length;
    const code = await runCli(args, {
      context: {
        stdout,
        stderr,
        stdin: Readable.from([Buffer.from(options.stdin ?? '')]),
        env: { NIMBUS_URL: url, ...options.env },
        cwd: packageRoot(),
        now: () => NOW,
      },
    });
    return {
      code,
      stdout: Buffer.concat(out).toString(),
      stderr: Buffer.concat(err).toString(),
      requests: requests.slice(before),
    };
  }

  it('deploys: gzip upload with name and config query, progress on stderr, ready line on stdout', async () => {
    const r = await run(['deploy', 'examples/hello', '--name', 'hi', '--memory', '128', '--env', 'A=1', '--max', '3']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ready: hi r1  http://x/fn/hello/\n');
    assert.match(r.stderr, /^packing examples\/hello… \d+ files, .+\nuploading .+…\nbuilding…\n$/);
    const [req] = r.requests;
    assert.equal(req.headers['content-type'], 'application/gzip');
    assert.equal(req.url.searchParams.get('name'), 'hello');
    assert.deepEqual(JSON.parse(req.url.searchParams.get('config')!), {
      name: 'hi',
      env: { A: '1' },
      memory: 128,
      scale: { max: 3 },
    });
    assert.ok(gunzipSync(req.body).includes('Hello from Nimbus'), 'the archive holds the source');
  });

  it('reports an identical redeploy as unchanged, and --json prints the answer', async () => {
    const same = await run(['deploy', 'examples/hello', '--name', 'same']);
    assert.equal(same.stdout, 'unchanged: same r1 (identical source and config)\n');
    const json = await run(['deploy', 'examples/hello', '--json']);
    assert.equal(JSON.parse(json.stdout).revision, 'r1');
    assert.equal(json.requests[0].url.searchParams.get('config'), null, 'no flags, no config parameter');
  });

  it('prints a build failure as one line with its place and code, exit 1', async () => {
    const r = await run(['deploy', 'examples/hello', '--name', 'broken']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr.split('\n').at(-2)!,
      /^nimbus: Build failed: \| Expected ";" \(at index\.ts:3:7\) \(NIMBUS_ERR_BUILD_FAILED\)$/,
    );
  });

  it('rejects bad flags with exit 2 before anything is sent', async () => {
    for (const args of [
      ['deploy', 'examples/hello', '--memory', 'lots'],
      ['deploy', 'examples/hello', '--runtime', 'go'],
      ['deploy', 'examples/hello', '--min', '3', '--max', '1'],
      ['deploy', 'examples/hello', '--bogus'],
      ['invoke', 'hello', '-H', 'no colon here'],
      ['logs', 'hello', '--limit', '5000'],
      ['ls', '--url', 'not a url'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /^nimbus: [^\n]+\n$/, args.join(' '));
      assert.equal(r.requests.length, 0, args.join(' '));
    }
  });

  it('fails with exit 1 and one line for a directory that does not exist', async () => {
    const r = await run(['deploy', 'no/such/dir']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^nimbus: no such directory: .*no\/such\/dir\n$/);
  });

  it('invokes: GET without data, POST with it, headers and path passed through, -i on stderr', async () => {
    const get = await run(['invoke', 'hello', '--path', 'a/b?x=1']);
    assert.equal(get.stdout, 'GET /fn/hello/a/b?x=1 ');
    const post = await run(['invoke', 'hello', '--data', '{"n":1}', '-H', 'X-Test: yes', '-i']);
    assert.equal(post.code, 0);
    assert.equal(post.stdout, 'POST /fn/hello/ {"n":1}');
    assert.equal(post.requests[0].headers['content-type'], 'application/json');
    assert.equal(post.requests[0].headers['x-test'], 'yes');
    assert.match(post.stderr, /^HTTP 200 OK\n(.+\n)*x-nimbus-request-id: q1\n(.+\n)*\n$/);
    const stdin = await run(['invoke', 'hello', '--data', '-', '-X', 'put'], { stdin: 'from stdin' });
    assert.equal(stdin.stdout, 'PUT /fn/hello/ from stdin');
  });

  it('exits 1 on a non-2xx answer after printing the body; platform errors name their code', async () => {
    const own = await run(['invoke', 'teapot']);
    assert.equal(own.code, 1);
    assert.equal(own.stdout, 'short and stout');
    assert.equal(own.stderr, "nimbus: teapot answered 418 I'm a Teapot\n");
    const platform = await run(['invoke', 'missing']);
    assert.equal(platform.code, 1);
    assert.match(platform.stdout, /NIMBUS_ERR_FUNCTION_NOT_FOUND/);
    assert.equal(platform.stderr, 'nimbus: Function missing not found (NIMBUS_ERR_FUNCTION_NOT_FOUND)\n');
  });

  it('lists, describes and deletes, with aliases and --json', async () => {
    const ls = await run(['list']);
    assert.match(
      ls.stdout,
      /^NAME +REVISION +RUNTIME +INSTANCES +UPDATED +URL\nhello +r1 +node +1 +2m ago +http:\/\/x\/fn\/hello\/\n$/,
    );
    assert.deepEqual(JSON.parse((await run(['ls', '--json'])).stdout), { functions: [summary] });
    const missing = await run(['describe', 'missing']);
    assert.deepEqual(
      [missing.code, missing.stderr],
      [1, 'nimbus: Function missing not found (NIMBUS_ERR_FUNCTION_NOT_FOUND)\n'],
    );
    const rm = await run(['delete', 'hello']);
    assert.deepEqual([rm.code, rm.stdout, rm.requests[0].method], [0, 'deleted hello\n', 'DELETE']);
  });

  it('prints logs, passing limit, since and request id, and follows the event stream', async () => {
    const r = await run(['logs', 'hello', '--limit', '5', '--since', '10m', '--request-id', 'q1']);
    assert.equal(r.stdout, '2025-01-01T11:59:00.000Z [r1 i1] booted\n2025-01-01T11:59:00.000Z [r1 i1] [q1] hi\n');
    const q = r.requests[0].url.searchParams;
    assert.deepEqual([q.get('limit'), q.get('since'), q.get('requestId')], ['5', '2025-01-01T11:50:00.000Z', 'q1']);
    const f = await run(['logs', 'hello', '-f']);
    assert.equal(f.code, 0);
    assert.equal(f.stdout, '2025-01-01T11:59:00.000Z [r1 i1] [q1] first\n2025-01-01T11:59:00.000Z [r1 i1] second\n');
  });

  it('says plainly when nothing listens at the URL', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await run(['ls'], { env: { NIMBUS_URL: `http://127.0.0.1:${port}` } });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `nimbus: cannot reach Nimbus at http://127.0.0.1:${port} (is \`nimbus serve\` running?)\n`);
  });

  it('resolves serve flags and env into the hook options', async () => {
    let got: unknown;
    const code = await runCli(
      [
        'serve',
        '--port',
        '0',
        '--no-examples',
        '--max-body',
        '1024',
        '--require-sandbox',
        '--no-metrics',
        '--pool-size',
        '0',
      ],
      {
        serve: async (options) => {
          got = options;
        },
        context: { env: { NIMBUS_DATA: 'state' }, cwd: '/srv' },
      },
    );
    assert.equal(code, 0);
    assert.deepEqual(got, {
      host: '127.0.0.1',
      port: 0,
      dataDir: join('/srv', 'state'),
      examples: false,
      requireSandbox: true,
      maxBodyBytes: 1024,
      metrics: false,
      poolSize: 0,
    });
    await runCli(['serve'], {
      serve: async (o) => {
        got = o;
      },
      context: { env: { NIMBUS_PORT: '9090' }, cwd: '/srv' },
    });
    assert.deepEqual(got, {
      host: '127.0.0.1',
      port: 9090,
      dataDir: '/srv/.nimbus',
      examples: true,
      requireSandbox: false,
    });
  });

  it('refuses a NATS URL that is not nats:// or tls:// with exit 2 before serving', async () => {
    const stderr = new PassThrough();
    let served = false;
    const code = await runCli(['serve', '--nats-url', 'http://127.0.0.1:4222'], {
      serve: async () => {
        served = true;
      },
      context: { stderr, env: {}, cwd: '/srv' },
    });
    assert.equal(code, 2);
    assert.equal(served, false);
    assert.match(String(stderr.read()), /^nimbus: invalid --nats-url .*expected nats:\/\/HOST:PORT/);
    let got: unknown;
    await runCli(['serve'], {
      serve: async (o) => {
        got = o;
      },
      context: { env: { NIMBUS_NATS_URL: 'nats://127.0.0.1:4222' }, cwd: '/srv' },
    });
    assert.equal((got as { natsUrl?: string }).natsUrl, 'nats://127.0.0.1:4222');
  });
});
