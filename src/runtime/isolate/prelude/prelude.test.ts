// The isolate's web surface against Node's own (WHATWG) implementations, case by case: what the
// prelude answers inside an isolate must equal what Node answers for the same input.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Probe, startProbe } from './probe-instance.js';

/**
 * Runs in both Node and the isolate; returns plain data. Plain JavaScript in a string: a function's
 * toString() under tsx carries helpers the isolate does not have.
 */
const PROBE = String.raw`function probe(input) {
  const url = (u, base) => {
    try {
      const x = new URL(u, base);
      return [x.href, x.protocol, x.host, x.hostname, x.port, x.pathname, x.search, x.hash, x.origin];
    } catch {
      return 'invalid';
    }
  };
  return {
    urls: input.urls.map(([u, base]) => url(u, base)),
    queries: input.queries.map((q) => {
      const p = new URLSearchParams(q);
      p.append('added', 'a b&c=d');
      return [[...p], p.toString(), p.get('a'), p.getAll('a')];
    }),
    encoded: input.texts.map((t) => [...new TextEncoder().encode(t)]),
    decoded: input.bytes.map((b) => new TextDecoder().decode(new Uint8Array(b))),
    base64: input.texts.filter((t) => /^[\x00-\xff]*$/.test(t)).map((t) => [btoa(t), atob(btoa(t))]),
    headers: (() => {
      const h = new Headers({ 'Content-Type': 'text/plain', 'X-B': '1' });
      h.append('x-b', '2');
      h.append('Set-Cookie', 'a=1');
      h.append('Set-Cookie', 'b=2');
      return [[...h], h.get('x-b'), h.has('CONTENT-TYPE'), h.getSetCookie()];
    })(),
  };
}
`;
const probe = new Function(`${PROBE}; return probe;`)() as (input: unknown) => Record<string, unknown>;

const INPUT = {
  urls: [
    ['http://a/b/../c/./d?x=1#f'],
    ['HTTPS://Example.COM:443/p'],
    ['http://u:pw@h:8080/x'],
    ['./d', 'http://a/b/c'],
    ['../x', 'http://a/b/c/d'],
    ['?q=1', 'http://a/b?z'],
    ['#h', 'http://a/b?z'],
    ['//other/x', 'https://a/b'],
    ['/abs', 'http://a:81/b/c'],
    ['http://a/%7Euser/'],
    ['http://a'],
    ['not a url'],
    ['http://[::1]:8080/p'],
    ['http://a/café x?q=é 1#fräg'],
  ] as [string, string?][],
  queries: ['a=1&b=x+y&a=2', '?c=%20d&e', 'k=caf%C3%A9&=v&w=', ''],
  texts: ['hello', 'héllo €', '😀 emoji', 'a\ud800b', '\x00\xff'],
  bytes: [
    [104, 105],
    [0xc3, 0xa9],
    [0xf0, 0x9f, 0x98, 0x80],
    [0xff, 0x61],
    [0xef, 0xbb, 0xbf, 0x61],
  ],
};

describe('isolate prelude matches Node', () => {
  let probeIn: Probe;
  before(async () => {
    probeIn = await startProbe(PROBE);
  });
  after(() => probeIn.close());

  it('answers URL, URLSearchParams, TextEncoder/Decoder, base64 and Headers like Node', async () => {
    const inside = (await probeIn.ask(INPUT)) as Record<string, unknown>;
    const node = JSON.parse(JSON.stringify(probe(INPUT)));
    for (const key of Object.keys(node)) assert.deepEqual(inside[key], node[key], key);
  });
});
