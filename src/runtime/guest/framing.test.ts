import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  FrameDecoder,
  FrameType,
  FrameWriter,
  FramingError,
  HEADER_BYTES,
  INITIAL_WINDOW,
  Outbound,
  PREFACE,
} from './framing.js';

interface Frame {
  type: number;
  stream: number;
  payload: string;
}

function frame(type: number, stream: number, payload = ''): Buffer {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt32BE(body.length, 0);
  head.writeUInt32BE(stream, 4);
  head[8] = type;
  return Buffer.concat([head, body]);
}

function decoder(options: { preface?: boolean } = {}): { frames: Frame[]; decoder: FrameDecoder } {
  const frames: Frame[] = [];
  const d = new FrameDecoder(
    (type, stream, payload) => frames.push({ type, stream, payload: payload.toString() }),
    options,
  );
  return { frames, decoder: d };
}

/** A connected pair of Unix sockets: what one writes, the other reads. */
async function socketPair(): Promise<{ a: Socket; b: Socket; close: () => void }> {
  const path = join(tmpdir(), `nimbus-framing-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const a = connect(path);
  const [b] = (await accepted) as [Socket];
  return {
    a,
    b,
    close() {
      a.destroy();
      b.destroy();
      server.close();
    },
  };
}

describe('framing codec', () => {
  it('decodes frames merged into one chunk, in order', () => {
    const { frames, decoder: d } = decoder();
    d.push(Buffer.concat([frame(1, 1, 'head'), frame(2, 1, 'data'), frame(3, 1), frame(1, 3, 'other')]));
    assert.deepEqual(frames, [
      { type: 1, stream: 1, payload: 'head' },
      { type: 2, stream: 1, payload: 'data' },
      { type: 3, stream: 1, payload: '' },
      { type: 1, stream: 3, payload: 'other' },
    ]);
  });

  it('decodes frames split at every byte boundary', () => {
    const bytes = Buffer.concat([PREFACE, frame(1, 7, 'héllo'), frame(5, 7, 'x'.repeat(300)), frame(6, 7)]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const { frames, decoder: d } = decoder({ preface: true });
      d.push(bytes.subarray(0, cut));
      d.push(bytes.subarray(cut));
      assert.deepEqual(
        frames.map((f) => [f.type, f.stream, f.payload.length]),
        [
          [1, 7, 'héllo'.length],
          [5, 7, 300],
          [6, 7, 0],
        ],
        `cut at ${cut}`,
      );
    }
    const { frames, decoder: d } = decoder({ preface: true });
    for (const byte of bytes) d.push(Buffer.from([byte]));
    assert.equal(frames.length, 3, 'one byte at a time');
  });

  it('reassembles a large payload arriving in many chunks', () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 7);
    const bytes = frame(2, 1, big.toString('latin1'));
    const { frames, decoder: d } = decoder();
    for (let at = 0; at < bytes.length; at += 65536) d.push(bytes.subarray(at, at + 65536));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.payload.length, big.length);
  });

  it('rejects a connection that does not start with the preface, and oversized frames', () => {
    assert.throws(() => decoder({ preface: true }).decoder.push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), FramingError);
    const huge = Buffer.alloc(HEADER_BYTES);
    huge.writeUInt32BE(0xffffffff, 0);
    assert.throws(() => decoder().decoder.push(huge), FramingError);
  });

  describe('over a socket', () => {
    let pair: Awaited<ReturnType<typeof socketPair>>;
    before(async () => {
      pair = await socketPair();
    });
    after(() => pair.close());

    it('writes every frame queued in one turn with one socket write', async () => {
      const writer = new FrameWriter(pair.a);
      const writes: number[] = [];
      const original = pair.a.write.bind(pair.a);
      pair.a.write = ((chunk: Buffer, ...rest: never[]) => {
        writes.push(chunk.length);
        return original(chunk, ...rest);
      }) as typeof pair.a.write;
      const { frames, decoder: d } = decoder();
      pair.b.on('data', (chunk: Buffer) => d.push(chunk));
      for (let id = 1; id <= 100; id++) {
        writer.frame(FrameType.ResponseHead, id, JSON.stringify([200, ['content-type', 'text/plain']]));
        writer.frame(FrameType.ResponseData, id, Buffer.from(`body ${id}`));
        writer.frame(FrameType.ResponseEnd, id);
      }
      while (frames.length < 300) await once(pair.b, 'data');
      assert.equal(writes.length, 1, `one write for 300 frames, got ${writes.length}`);
      assert.deepEqual(frames[298], { type: FrameType.ResponseData, stream: 100, payload: 'body 100' });
      pair.a.write = original;
      pair.b.removeAllListeners('data');
    });

    it('passes large payloads by reference next to small frames (one corked writev)', async () => {
      const writer = new FrameWriter(pair.a);
      const { frames, decoder: d } = decoder();
      pair.b.on('data', (chunk: Buffer) => d.push(chunk));
      const big = Buffer.alloc(200_000, 'b');
      writer.frame(FrameType.RequestHead, 1, '["POST","/",1,[]]');
      writer.frame(FrameType.RequestData, 1, big);
      writer.frame(FrameType.RequestEnd, 1);
      writer.window(3, 1234);
      while (frames.length < 4) await once(pair.b, 'data');
      assert.deepEqual(
        frames.map((f) => [f.type, f.stream, f.payload.length]),
        [
          [FrameType.RequestHead, 1, 17],
          [FrameType.RequestData, 1, big.length],
          [FrameType.RequestEnd, 1, 0],
          [FrameType.Window, 3, 4],
        ],
      );
      pair.b.removeAllListeners('data');
    });
  });
});

describe('per-stream credit (Outbound)', () => {
  /** A FrameWriter stand-in that records frames without a socket. */
  function recorder() {
    const sent: { type: number; bytes: number }[] = [];
    const writer = {
      blocked: false,
      frame(type: number, _stream: number, payload?: Buffer) {
        sent.push({ type, bytes: payload?.length ?? 0 });
      },
      onDrain(callback: () => void) {
        callback();
      },
    } as unknown as FrameWriter;
    const dataBytes = () => sent.filter((f) => f.type === FrameType.ResponseData).reduce((n, f) => n + f.bytes, 0);
    return { sent, writer, dataBytes };
  }

  it('never sends more than the window until credit is granted, then sends the rest and END', () => {
    const { sent, writer, dataBytes } = recorder();
    const out = new Outbound(writer, 1, FrameType.ResponseData, FrameType.ResponseEnd);
    const chunk = Buffer.alloc(100_000);
    let accepted = 0;
    while (out.send(chunk)) accepted++;
    assert.equal(accepted, Math.floor(INITIAL_WINDOW / chunk.length), 'send() says stop once the window is used up');
    assert.equal(dataBytes(), INITIAL_WINDOW, 'exactly the window is on the wire (the chunk was split)');
    let ended = false;
    out.end(() => {
      ended = true;
    });
    assert.equal(ended, false, 'END waits behind queued data');
    let writable = false;
    out.whenWritable(() => {
      writable = true;
    });
    out.grant(20_000);
    assert.equal(dataBytes(), INITIAL_WINDOW + 20_000, 'a grant releases exactly its bytes');
    assert.equal(writable, false);
    out.grant(INITIAL_WINDOW);
    assert.equal(dataBytes(), (accepted + 1) * chunk.length);
    assert.equal(sent.at(-1)!.type, FrameType.ResponseEnd);
    assert.ok(ended && writable);
  });

  it('sends nothing more once closed (cancelled)', () => {
    const { sent, writer } = recorder();
    const out = new Outbound(writer, 1, FrameType.ResponseData, FrameType.ResponseEnd);
    out.close();
    assert.equal(out.send(Buffer.from('x')), false);
    out.end();
    out.grant(10);
    assert.deepEqual(sent, []);
  });
});
