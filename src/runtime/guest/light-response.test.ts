import assert from 'node:assert/strict';
import { test } from 'node:test';
import { installLightResponse, lightParts } from './light-response.js';

// This file's process gets the light global Response, as a guest does.
const Real = globalThis.Response;
installLightResponse();
const R = globalThis.Response;

test('a string or bytes body with a plain init is kept as given, headers as Headers would list them', async () => {
  const a = new R('hello');
  assert.ok(a instanceof R && a instanceof Real);
  assert.deepEqual(lightParts(a), {
    status: 200,
    headers: ['content-type', 'text/plain;charset=UTF-8'],
    body: 'hello',
    args: ['hello', undefined],
  });
  const b = new R('{}', { status: 201, headers: { 'X-A': 'b', 'Content-Type': 'application/json' } });
  assert.deepEqual(lightParts(b)?.headers, ['content-type', 'application/json', 'x-a', 'b']);
  assert.equal(b.status, 201);
  assert.equal(b.ok, true);
  assert.ok(lightParts(b), 'status and ok leave it light');
  assert.deepEqual(lightParts(new R(Buffer.from('x')))?.headers, []);
  assert.equal(await new R(Buffer.from('abc')).text(), 'abc');
});

test('anything else builds the real Response, and errors are thrown where they were', async () => {
  const b = new R('{}', { headers: { 'x-a': 'b' } });
  assert.deepEqual(
    [...b.headers],
    [
      ['x-a', 'b'],
      ['content-type', 'text/plain;charset=UTF-8'],
    ].sort(),
  );
  assert.equal(lightParts(b), undefined, 'reading headers makes it real');
  assert.equal(await b.text(), '{}');
  assert.throws(() => new R('x', { status: 204 }), TypeError);
  assert.throws(() => new R('x', { status: 99 }), RangeError);
  assert.throws(() => new R('x', { headers: { 'a b': 'c' } }), TypeError);
  assert.equal(new R('x', { headers: { a: ' c ' } }).headers.get('a'), 'c');
  assert.equal(new R(null, { status: 204 }).status, 204);
  const c = new R('cl');
  assert.equal(await c.clone().text(), 'cl');
  const d = new R('x');
  assert.equal(d.bodyUsed, false);
  assert.equal(d.statusText, '');
  assert.equal(Object.prototype.toString.call(d), '[object Response]');
  assert.equal(d.constructor.name, 'Response');
  assert.equal(new R(new ReadableStream({ start: (ctl) => ctl.close() })).status, 200);
});

test('real Responses are instances of it; subclasses and statics work', async () => {
  assert.ok(new Real('x') instanceof R);
  const j = R.json({ a: 1 });
  assert.ok(j instanceof R);
  assert.equal(await j.text(), '{"a":1}');
  class Sub extends R {
    extra = 1;
  }
  const s = new Sub('q');
  assert.ok(s instanceof Sub && s instanceof R);
  assert.ok(!(new R('z') instanceof Sub));
  assert.equal(await s.text(), 'q');
});
