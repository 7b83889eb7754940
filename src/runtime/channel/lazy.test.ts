import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import {
  createLazyRequest,
  createLazyResponse,
  PushedBody,
  takeLazyRequestParts,
  takeLazyResponseParts,
} from './index.js';

const lazyRequest = (body: string | null = 'payload') =>
  createLazyRequest({
    method: body === null ? 'GET' : 'POST',
    host: 'fn.test',
    path: '/p?q=1',
    headers: ['X-One', '1', 'x-two', '2'],
    body: body === null ? null : new PassThrough().end(body),
  });

describe('lazy Request', () => {
  it('is a Request whose method, url, headers and body readers come from its parts', async () => {
    const request = lazyRequest();
    assert.ok(request instanceof Request);
    assert.deepEqual(
      [request.method, request.url, request.headers.get('x-one')],
      ['POST', 'http://fn.test/p?q=1', '1'],
    );
    assert.equal(await request.text(), 'payload');
    assert.equal(request.bodyUsed, true);
    await assert.rejects(request.text(), TypeError);
  });

  it('builds the complete Request for everything else (body stream, clone, new Request(lazy))', async () => {
    const copy = new Request(lazyRequest());
    assert.deepEqual([copy.method, copy.url, await copy.text()], ['POST', 'http://fn.test/p?q=1', 'payload']);
    const streamed = lazyRequest('streamed');
    assert.ok(streamed.body instanceof ReadableStream);
    assert.equal(await streamed.clone().text(), 'streamed');
    assert.equal(takeLazyRequestParts(streamed), undefined, 'its body is exposed: nothing to take');
  });

  it('gives its parts once, with changes made through request.headers', () => {
    const request = lazyRequest(null);
    request.headers.set('x-added', 'yes');
    const parts = takeLazyRequestParts(request);
    assert.deepEqual(parts?.headers, ['x-added', 'yes', 'x-one', '1', 'x-two', '2']);
    assert.equal(takeLazyRequestParts(request), undefined);
    assert.equal(takeLazyRequestParts(new Request('http://fn.test/')), undefined);
  });
});

describe('lazy Response over a pushed body', () => {
  const control = () => {
    const calls: string[] = [];
    return {
      calls,
      pause: () => calls.push('pause'),
      resume: () => calls.push('resume'),
      abort: () => calls.push('abort'),
    };
  };

  it('is a Response whose body is readable as a web stream', async () => {
    const body = new PushedBody(1024);
    const response = createLazyResponse({ status: 201, headers: { 'set-cookie': ['a=1', 'b=2'], 'x-h': 'v' }, body });
    assert.ok(response instanceof Response);
    assert.deepEqual([response.status, response.ok, response.headers.get('x-h')], [201, true, 'v']);
    assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
    body.push(Buffer.from('he'));
    const text = response.text();
    body.push(Buffer.from('llo'));
    body.end();
    assert.equal(await text, 'hello');
  });

  it('hands a complete body over whole, and a streaming one chunk by chunk with back-pressure', () => {
    const done = new PushedBody(1024);
    done.push(Buffer.from('a'));
    done.push(Buffer.from('b'));
    done.end();
    const parts = takeLazyResponseParts(createLazyResponse({ status: 200, headers: {}, body: done }))!;
    assert.equal(parts.body?.complete, true);
    assert.equal(parts.body?.takeAll().toString(), 'ab');

    const flow = control();
    const streaming = new PushedBody(4);
    streaming.setControl(flow);
    streaming.push(Buffer.from('12345'));
    assert.deepEqual(flow.calls, ['pause'], 'buffered past the high-water mark: the producer pauses');
    const seen: string[] = [];
    let accept = true;
    streaming.attach({
      write: (c) => {
        seen.push(c.toString());
        return accept;
      },
      end: () => seen.push('end'),
      error() {},
    });
    assert.deepEqual(flow.calls, ['pause', 'resume']);
    accept = false;
    streaming.push(Buffer.from('6'));
    assert.deepEqual(flow.calls, ['pause', 'resume', 'pause'], 'the reader said stop');
    streaming.resume();
    streaming.end();
    assert.deepEqual(seen, ['12345', '6', 'end']);
    assert.deepEqual(flow.calls, ['pause', 'resume', 'pause', 'resume']);
  });

  it('cancelling the web stream aborts the producer; a failure errors the reader', async () => {
    const flow = control();
    const body = new PushedBody(1024);
    body.setControl(flow);
    await createLazyResponse({ status: 200, headers: {}, body }).body!.cancel();
    assert.deepEqual(flow.calls, ['abort']);
    const failing = new PushedBody(1024);
    const text = createLazyResponse({ status: 200, headers: {}, body: failing }).text();
    failing.fail(new Error('instance died'));
    await assert.rejects(text, /instance died/);
  });
});
