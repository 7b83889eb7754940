import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { hasCode } from '../../core/errors.js';
import { createLazyRequest, takeLazyResponseParts } from '../channel/index.js';
import { type FramedRequest, type FramedResponse, serveFramed } from '../guest/framed-server.js';
import { INITIAL_WINDOW } from '../guest/framing.js';
import { createFramedChannel } from './channel-framed.js';

type Handler = (req: FramedRequest, res: FramedResponse) => void;

/** A guest serving the framed protocol in this process, and the host channel to it. */
async function guest(handler: Handler) {
  const path = join(tmpdir(), `nimbus-chan-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('data', (first: Buffer) => serveFramed(socket, first, handler));
  });
  server.listen(path);
  await once(server, 'listening');
  const channel = createFramedChannel(path, 'test-instance');
  return {
    channel,
    /** Kills every guest connection, as a dying process would. */
    crash: () => {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      await channel.close();
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

const get = (path: string, headers: string[] = []) =>
  createLazyRequest({ method: 'GET', host: 'fn.test', path, headers, body: null });

describe('framed channel', () => {
  it('multiplexes many concurrent requests on one connection, each answer to its caller', async () => {
    const connections: number[] = [];
    const g = await guest((req, res) => {
      connections.push(1);
      const delay = Math.floor(Math.random() * 5);
      setTimeout(() => {
        res.writeHead(200, ['x-path', req.url, 'x-host', String(req.headers.host)]);
        res.end(`answer for ${req.url} (${req.headers['x-n']})`);
      }, delay);
    });
    after(() => g.close());
    const answers = await Promise.all(
      Array.from({ length: 500 }, async (_, i) => {
        const res = await g.channel.fetch(get(`/n/${i}?q=${i}`, ['x-n', String(i)]));
        return [res.headers.get('x-path'), res.headers.get('x-host'), await res.text()];
      }),
    );
    answers.forEach((answer, i) => {
      assert.deepEqual(answer, [`/n/${i}?q=${i}`, 'fn.test', `answer for /n/${i}?q=${i} (${i})`]);
    });
    assert.equal(connections.length, 500);
  });

  it('moves large bodies both ways intact (far over the window, in many frames)', async () => {
    const g = await guest(async (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for await (const chunk of req) if (!res.write(chunk)) await once(res, 'drain');
      res.end();
    });
    after(() => g.close());
    const big = Buffer.alloc(5 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const pieces = [];
    for (let at = 0; at < big.length; at += 100_000) pieces.push(big.subarray(at, at + 100_000));
    const res = await g.channel.fetch(
      createLazyRequest({ method: 'POST', host: 'fn.test', path: '/', headers: [], body: Readable.from(pieces) }),
    );
    const back = Buffer.from(await res.arrayBuffer());
    assert.equal(back.length, big.length);
    assert.ok(back.equals(big));
  });

  it('cancels the guest request when the caller aborts, and rejects with the reason', async () => {
    let guestSaw: (what: string) => void;
    const seen = new Promise<string>((resolve) => (guestSaw = resolve));
    let arrived: () => void;
    const started = new Promise<void>((resolve) => (arrived = resolve));
    const g = await guest((req, res) => {
      res.once('close', () => guestSaw(`closed, finished: ${res.writableFinished}, cancelled: ${res.cancelled}`));
      req.resume();
      arrived();
    });
    after(() => g.close());
    const controller = new AbortController();
    const pending = g.channel.fetch(get('/hang'), controller.signal);
    await started;
    const reason = new Error('client went away');
    controller.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
    assert.equal(await seen, 'closed, finished: false, cancelled: true');
  });

  it('cancels a body being streamed when its reader cancels it', async () => {
    let guestClosed: () => void;
    const closed = new Promise<void>((resolve) => (guestClosed = resolve));
    const g = await guest((_req, res) => {
      res.once('close', () => guestClosed());
      res.write('first');
    });
    after(() => g.close());
    const res = await g.channel.fetch(get('/stream'));
    const reader = res.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), 'first');
    await reader.cancel(new Error('not interested'));
    await closed;
  });

  it('bounds what a guest buffers for a reader that does not read (per-stream credit)', async () => {
    let produced = 0;
    let stalled: () => void;
    const stall = new Promise<void>((resolve) => (stalled = resolve));
    const chunk = Buffer.alloc(16 * 1024, 'z');
    const g = await guest(async (_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 1000; i++) {
        produced += chunk.length;
        if (!res.write(chunk)) {
          stalled();
          await once(res, 'drain');
        }
      }
      res.end();
    });
    after(() => g.close());
    const res = await g.channel.fetch(get('/firehose'));
    const parts = takeLazyResponseParts(res)!;
    await stall;
    await new Promise((resolve) => setTimeout(resolve, 200));
    // window in flight + the host's body buffer (64 KB) + the guest response's buffer (64 KB).
    const bound = INITIAL_WINDOW + 2 * 64 * 1024 + chunk.length;
    assert.ok(produced <= bound, `the guest produced ${produced} bytes for a reader that read none (bound ${bound})`);
    // Reading resumes the flow to the end.
    const sink = new PassThrough();
    let received = 0;
    sink.on('data', (c: Buffer) => {
      received += c.length;
    });
    await new Promise<void>((resolve, reject) =>
      parts.body!.attach({
        write: (c) => sink.write(c),
        end: resolve,
        error: reject,
      }),
    );
    assert.equal(received, 1000 * chunk.length);
  });

  it('does not read a request body faster than the guest takes it', async () => {
    let pulled = 0;
    let take: () => void;
    const taking = new Promise<void>((resolve) => (take = resolve));
    const source = new Readable({
      highWaterMark: 16 * 1024,
      read() {
        pulled += 16 * 1024;
        this.push(pulled > 10 * 1024 * 1024 ? null : Buffer.alloc(16 * 1024));
      },
    });
    const g = await guest(async (req, res) => {
      await taking;
      let bytes = 0;
      for await (const c of req) bytes += c.length;
      res.end(String(bytes));
    });
    after(() => g.close());
    const pending = g.channel.fetch(
      createLazyRequest({ method: 'POST', host: 'fn.test', path: '/', headers: [], body: source }),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const bound = INITIAL_WINDOW + 16 * 16 * 1024 + 64 * 1024;
    assert.ok(pulled <= bound, `the host read ${pulled} bytes of a body the guest did not read (bound ${bound})`);
    take!();
    assert.equal(await (await pending).text(), String(10 * 1024 * 1024));
  });

  it('fails every open stream INSTANCE_CRASHED when the guest dies, and reconnects afterwards', async () => {
    let started = 0;
    let allStarted: () => void;
    const waiting = new Promise<void>((resolve) => (allStarted = resolve));
    const g = await guest((req, res) => {
      if (req.url === '/ok') return void res.end('ok');
      if (req.url === '/streaming') res.write('first');
      if (++started === 2) allStarted();
    });
    after(() => g.close());
    const before = g.channel.fetch(get('/hang'));
    const streaming = await g.channel.fetch(get('/streaming'));
    await waiting;
    const reader = streaming.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), 'first');
    g.crash();
    await assert.rejects(
      before,
      (err: Error) => hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED') && /before answering/.test(err.message),
    );
    await assert.rejects(reader.read(), (err: Error) => hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED'));
    assert.equal(await (await g.channel.fetch(get('/ok'))).text(), 'ok', 'a new connection is made');
  });

  it('rejects INSTANCE_CRASHED when nothing listens, and after close', async () => {
    const channel = createFramedChannel(join(tmpdir(), 'nimbus-no-such-socket.sock'), 'gone');
    await assert.rejects(channel.fetch(get('/')), (err) => hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED'));
    await channel.close();
    await assert.rejects(channel.fetch(get('/')), (err) => hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED'));
  });
});
