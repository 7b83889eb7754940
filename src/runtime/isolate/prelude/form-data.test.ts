// FormData, Blob / File and formData() of urlencoded and multipart bodies inside an isolate,
// against Node's own (undici's) answers for the same input.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Probe, startProbe } from './probe-instance.js';

/** Runs in both Node and the isolate (plain JavaScript); returns plain data. */
const PROBE = `async function probe(input) {
  const show = async (form) => {
    const out = [];
    for (const [k, v] of form) out.push(typeof v === 'string' ? [k, v] : [k, v.name, v.type, v.size, await v.text(), String(v)]);
    return out;
  };
  const parse = async (body, type) => {
    try {
      return await show(await new Response(body, { headers: type ? { 'content-type': type } : {} }).formData());
    } catch (e) {
      return [e.name];
    }
  };
  const form = new FormData();
  form.append('a', 'x');
  form.append('a', 'y\\nz');
  form.append('file', new Blob(['héllo'], { type: 'text/plain' }), 'quo"te.txt');
  form.append('blob', new Blob([new Uint8Array([0, 1, 2])]));
  form.append('caf\u00e9', new File(['f'], 'f.bin', { type: 'application/x-thing' }));
  form.set('n', '1');
  form.set('a', 'only');
  const copy = new Response(form);
  return {
    built: [await show(form), form.has('a'), form.get('missing'), form.getAll('a'), [...form.keys()]],
    roundTrip: await show(await copy.formData()),
    type: copy.headers.get('content-type').split(';')[0],
    blob: await (async () => {
      const b = new Blob(['ab', new Uint8Array([99]), new Blob(['d'])], { type: 'Text/Plain' });
      return [b.size, b.type, await b.text(), await b.slice(1, 3).text(), String(b)];
    })(),
    parsed: await Promise.all(input.bodies.map(([body, type]) => parse(body, type))),
    params: await show(await new Request('http://x/', { method: 'POST', body: new URLSearchParams('k=v&k=w') }).formData()),
  };
}
`;
const probe = new Function(`${PROBE}; return probe;`)() as (input: unknown) => Promise<Record<string, unknown>>;

const B = 'XyZ';
const INPUT = {
  bodies: [
    ['a=1&b=x+y&a=%C3%A9&empty=&=novalue', 'application/x-www-form-urlencoded'],
    ['a=1', 'application/x-www-form-urlencoded; charset=UTF-8'],
    [
      `--${B}\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\nwith lines\r\n--${B}\r\n` +
        `Content-Disposition: form-data; name="up"; filename="a %22b%22.txt"\r\nContent-Type: text/csv\r\n\r\n1,2\r\n--${B}\r\n` +
        `Content-Disposition: form-data; name="empty"\r\n\r\n\r\n--${B}--\r\n`,
      `multipart/form-data; boundary=${B}`,
    ],
    [
      `--${B}\r\nContent-Disposition: form-data; name="q"\r\n\r\n"quoted boundary"\r\n--${B}--`,
      `multipart/form-data; boundary="${B}"`,
    ],
    [`--${B}\r\nContent-Disposition: form-data; name="x"\r\n\r\nno end`, `multipart/form-data; boundary=${B}`],
    ['a=1', 'text/plain'],
    ['a=1', ''],
    [`--${B}--`, 'multipart/form-data'],
  ],
};

describe('isolate FormData matches Node', () => {
  let probeIn: Probe;
  before(async () => {
    probeIn = await startProbe(PROBE);
  });
  after(() => probeIn.close());

  it('builds, encodes and parses forms (urlencoded and multipart) like Node', async () => {
    const inside = (await probeIn.ask(INPUT)) as Record<string, unknown>;
    const node = JSON.parse(JSON.stringify(await probe(INPUT)));
    for (const key of Object.keys(node)) assert.deepEqual(inside[key], node[key], key);
  });

  it('accepts a multipart preamble and epilogue (RFC 2046), which Node refuses', async () => {
    const body = `preamble\r\n--${B}\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--${B}--\r\nepilogue`;
    const answer = (await probeIn.ask({ bodies: [[body, `multipart/form-data; boundary=${B}`]] })) as {
      parsed: unknown;
    };
    assert.deepEqual(answer.parsed, [[['f', 'v']]]);
  });
});
