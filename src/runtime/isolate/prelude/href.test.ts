// The prelude's shortcut for URLs already in canonical form must never change what `request.url`
// reads: for every input, hrefOf equals the prelude's own URL parser (or both refuse it), and
// every input it passes through unparsed is what Node's WHATWG parser prints too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hrefOf, isCanonicalHref } from './fetch-api.js';
import { URL as PreludeURL } from './url.js';

const URLS = [
  'http://127.0.0.1:8080/',
  'http://fn/',
  'http://fn/a/b?x=1&y=2',
  'https://example.com/p%20q?z=%41',
  'http://example.com:80/',
  'https://example.com:443/x',
  'http://example.com:65535/',
  'http://example.com:65536/',
  'http://EXAMPLE.com/',
  'http://fn/a/../b',
  'http://fn/a/./b',
  'http://fn/a/%2e%2E/b',
  'http://fn/a/..',
  'http://fn/a?b/../c',
  "http://fn/it's?q='x'",
  'http://fn/a b',
  'http://fn/%zz',
  'http://fn/a?b?c',
  'http://fn/é',
  'http://fn/a#frag',
  'http://[::1]:8080/x',
  'http://fn',
  'http://fn/{x}|^`',
];

const parse = (make: (input: string) => { href: string }, input: string) => {
  try {
    return make(input).href;
  } catch {
    return 'invalid';
  }
};

test('hrefOf: what the prelude URL parser prints, for every input', () => {
  for (const input of URLS) {
    const expected = parse((u) => new PreludeURL(u), input);
    assert.equal(
      parse((u) => ({ href: hrefOf(u) }), input),
      expected,
      input,
    );
  }
});

test('hrefOf: inputs taken as they are are canonical for the WHATWG parser too', () => {
  let taken = 0;
  for (const input of URLS) {
    if (!isCanonicalHref(input)) continue;
    taken++;
    assert.equal(new globalThis.URL(input).href, input, input);
  }
  assert.ok(taken >= 5, `only ${taken} inputs were canonical`);
});
