// crypto.subtle inside real isolates, against Node's own crypto: webhook HMACs, digests, JWT
// verification with keys made here, WebCrypto's error names, and the per-isolate caps.
import assert from 'node:assert/strict';
import { createHash, createHmac, createSign, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Instance } from '../types.js';
import { CRYPTO_LIMITS } from './host-crypto.js';
import { createIsolateRuntime } from './index.js';

/** Runs in Node and in the isolate (plain JavaScript: tsx output carries helpers an isolate lacks). */
const ERRORS = `async function errors() {
  const s = crypto.subtle;
  const out = [];
  const t = async (label, f) => {
    try { await f(); out.push([label, 'ok']); } catch (e) { out.push([label, e.name, e instanceof TypeError]); }
  };
  const hmac = await s.importKey('raw', new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  await t('digest MD5', () => s.digest('MD5', new Uint8Array(1)));
  await t('digest string', () => s.digest('SHA-256', 'abc'));
  await t('sign with a non-key', () => s.sign('HMAC', {}, new Uint8Array(1)));
  await t('wrong algorithm', () => s.sign('RSASSA-PKCS1-v1_5', hmac, new Uint8Array(1)));
  await t('wrong usage', () => s.verify('HMAC', hmac, new Uint8Array(32), new Uint8Array(1)));
  await t('not extractable', () => s.exportKey('raw', hmac));
  await t('hash missing', () => s.importKey('raw', new Uint8Array(32), { name: 'HMAC' }, false, ['sign']));
  await t('bad jwk', () => s.importKey('jwk', { kty: 'oct' }, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']));
  await t('bad spki', () => s.importKey('spki', new Uint8Array(10), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']));
  await t('bad usage', () => s.importKey('raw', new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['encrypt']));
  await t('random: too many bytes', () => crypto.getRandomValues(new Uint8Array(65537)));
  await t('random: floats', () => crypto.getRandomValues(new Float32Array(2)));
  await t('random: ints', () => crypto.getRandomValues(new Int32Array(4)));
  await t('unknown format', () => s.importKey('pem', new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']));
  return out;
}`;

const FUNCTION = `${ERRORS}
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
const b64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const enc = new TextEncoder();
export default async (request, env) => {
  const url = new URL(request.url);
  const s = crypto.subtle;
  if (url.pathname === '/github') {
    // GitHub's X-Hub-Signature-256: sha256= + hex HMAC-SHA256 of the raw body with the secret.
    const body = await request.arrayBuffer();
    const key = await s.importKey('raw', enc.encode(env.SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    const mine = 'sha256=' + hex(await s.sign('HMAC', key, body));
    const given = request.headers.get('x-hub-signature-256');
    const sig = Uint8Array.from(given.slice(7).match(/../g), (h) => parseInt(h, 16));
    return Response.json({ mine, valid: await s.verify('HMAC', key, sig, body), key: [key.type, key.extractable, key.algorithm, key.usages, String(key)] });
  }
  if (url.pathname === '/digest') {
    const text = await request.text();
    const out = {};
    for (const name of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) out[name] = hex(await s.digest(name, enc.encode(text)));
    out.view = hex(await s.digest({ name: 'SHA-256' }, new Uint8Array([0, 97, 98, 99, 0]).subarray(1, 4)));
    return Response.json(out);
  }
  if (url.pathname === '/jwt') {
    const { token, jwk, alg } = await request.json();
    const params = alg === 'RS256' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', namedCurve: 'P-256' };
    const key = await s.importKey('jwk', jwk, params, false, ['verify']);
    const [h, p, sig] = token.split('.');
    const verify = (data) => s.verify(alg === 'RS256' ? params : { name: 'ECDSA', hash: 'SHA-256' }, key, b64url(sig), enc.encode(data));
    return Response.json({ valid: await verify(h + '.' + p), tampered: await verify(h + '.' + p + 'x'), alg: key.algorithm.name });
  }
  if (url.pathname === '/errors') return Response.json(await errors());
  if (url.pathname === '/keys') {
    // Held keys count against the cap; imports of the same material share one slot.
    const held = [];
    for (let i = 0; i < 3 * ${CRYPTO_LIMITS.keys}; i++)
      held.push(await s.importKey('raw', enc.encode('same'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']));
    let made = 0;
    let error;
    try {
      for (;;) { held.push(await s.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])); made++; }
    } catch (e) { error = e.name; }
    return Response.json({ made, error });
  }
  if (url.pathname === '/churn') {
    // A key per iteration, dropped: the full table is freed by a collection, not refused.
    for (let i = 0; i < 3 * ${CRYPTO_LIMITS.keys}; i++) await s.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return new Response('made');
  }
  if (url.pathname === '/big') {
    const names = [];
    const t = async (f) => { try { await f(); names.push('ok'); } catch (e) { names.push(e.name); } };
    const hmac = (length) => ({ name: 'HMAC', hash: 'SHA-256', length });
    await t(() => s.digest('SHA-256', new Uint8Array(${CRYPTO_LIMITS.dataBytes} + 1)));
    await t(() => s.importKey('raw', new Uint8Array(${CRYPTO_LIMITS.keyBytes} + 1), hmac(), false, ['sign']));
    await t(() => s.importKey('raw', new Uint8Array(${CRYPTO_LIMITS.keyBytes}), hmac(), false, ['sign']));
    await t(() => s.generateKey(hmac(${CRYPTO_LIMITS.keyBytes} * 8 + 8), false, ['sign']));
    const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: ${CRYPTO_LIMITS.rsaGenerateBits * 2}, publicExponent: new Uint8Array([1, 0, 1]) };
    await t(() => s.generateKey(rsa, false, ['sign']));
    const pw = await s.importKey('raw', enc.encode('pw'), 'PBKDF2', false, ['deriveBits']);
    const pbkdf2 = (iterations) => ({ name: 'PBKDF2', hash: 'SHA-256', salt: new Uint8Array(8), iterations });
    await t(() => s.deriveBits(pbkdf2(${CRYPTO_LIMITS.pbkdf2Iterations} + 1), pw, 256));
    await t(() => s.deriveBits(pbkdf2(1000), pw, 256));
    await t(() => s.wrapKey('raw', pw, pw, 'AES-KW'));
    return Response.json(names);
  }
  if (url.pathname === '/flood') {
    // 40 calls of 4 MiB at once: past the pending-bytes cap some are refused, the rest still answer.
    const data = new ArrayBuffer(4 * 1024 * 1024);
    const all = await Promise.allSettled(Array.from({ length: 40 }, () => s.digest('SHA-256', data)));
    const refused = all.filter((r) => r.status === 'rejected').map((r) => r.reason.name);
    const hashes = new Set(all.filter((r) => r.status === 'fulfilled').map((r) => hex(r.value)));
    return Response.json({ refused: [...new Set(refused)], count: refused.length, hashes: [...hashes] });
  }
  if (url.pathname === '/roundtrip') {
    const pair = await s.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const sig = await s.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, enc.encode('m'));
    const aes = await s.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const box = await s.encrypt({ name: 'AES-GCM', iv }, aes, enc.encode('secret'));
    const plain = new TextDecoder().decode(await s.decrypt({ name: 'AES-GCM', iv }, aes, box));
    const jwk = await s.exportKey('jwk', pair.publicKey);
    return Response.json({ ok: await s.verify({ name: 'ECDSA', hash: 'SHA-256' }, pair.publicKey, sig, enc.encode('m')), plain, crv: jwk.crv, isKey: pair.privateKey instanceof CryptoKey });
  }
  return new Response('?', { status: 404 });
};
`;

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

describe('isolate crypto.subtle', () => {
  const runtime = createIsolateRuntime({ spares: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-subtle-'));
  writeFileSync(join(dir, 'fn.mjs'), FUNCTION);
  const instances = new Map<string, Promise<Instance>>();
  /** `id`: the instance (the key cap counts one isolate's live keys, so that test has its own). */
  const call = async (path: string, init?: RequestInit, id = 'subtle') => {
    if (!instances.has(id))
      instances.set(
        id,
        runtime.start({
          id,
          function: 'subtle',
          revision: 'r1',
          kind: 'isolate',
          artifactDir: dir,
          entry: 'fn.mjs',
          env: { SECRET: 'It’s a Secret to Everybody' },
          memoryMb: 128,
          timeoutMs: 20_000,
        }),
      );
    const fn = await instances.get(id)!;
    const res = await fn.fetch(new Request(`http://fn.test${path}`, init));
    assert.equal(res.status, 200, path);
    return res;
  };
  after(async () => {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs and verifies a GitHub webhook body as Node createHmac does', async () => {
    const body = JSON.stringify({ action: 'opened', zen: 'Hello, World!' });
    const expected = `sha256=${createHmac('sha256', 'It’s a Secret to Everybody').update(body).digest('hex')}`;
    const res = await call('/github', { method: 'POST', body, headers: { 'x-hub-signature-256': expected } });
    const out = (await res.json()) as { mine: string; valid: boolean; key: unknown[] };
    assert.equal(out.mine, expected);
    assert.equal(out.valid, true);
    assert.deepEqual(out.key, [
      'secret',
      false,
      { name: 'HMAC', hash: { name: 'SHA-256' }, length: Buffer.byteLength('It’s a Secret to Everybody') * 8 },
      ['sign', 'verify'],
      '[object CryptoKey]',
    ]);
  });

  it('digests with SHA-1/256/384/512 as Node does (SHA-256 of "abc" is the FIPS vector)', async () => {
    const out = (await (await call('/digest', { method: 'POST', body: 'abc' })).json()) as Record<string, string>;
    assert.equal(out['SHA-256'], 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    for (const name of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512'])
      assert.equal(out[name], createHash(name.replace('-', '').toLowerCase()).update('abc').digest('hex'), name);
    assert.equal(out.view, out['SHA-256'], 'a view digests its own bytes only');
  });

  for (const alg of ['RS256', 'ES256'] as const)
    it(`verifies an ${alg} JWT signed here with a fresh key, and refuses a tampered one`, async () => {
      const pair =
        alg === 'RS256'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const data = `${b64url(JSON.stringify({ alg, typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: 'me', iat: 1 }))}`;
      const signer = createSign('SHA256').update(data);
      const sig =
        alg === 'RS256'
          ? signer.sign(pair.privateKey)
          : signer.sign({ key: pair.privateKey, dsaEncoding: 'ieee-p1363' });
      const jwk = pair.publicKey.export({ format: 'jwk' });
      const res = await call('/jwt', {
        method: 'POST',
        body: JSON.stringify({ token: `${data}.${b64url(sig)}`, jwk, alg }),
      });
      assert.deepEqual(await res.json(), {
        valid: true,
        tampered: false,
        alg: alg === 'RS256' ? 'RSASSA-PKCS1-v1_5' : 'ECDSA',
      });
    });

  it('generates, signs, encrypts and exports inside the isolate', async () => {
    assert.deepEqual(await (await call('/roundtrip')).json(), { ok: true, plain: 'secret', crv: 'P-256', isKey: true });
  });

  it('fails bad input and wrong algorithms with the errors Node’s WebCrypto gives', async () => {
    const inside = await (await call('/errors')).json();
    const node = await (new Function(`${ERRORS}; return errors;`)() as () => Promise<unknown>)();
    assert.deepEqual(inside, JSON.parse(JSON.stringify(node)));
  });

  it(`caps live keys at ${CRYPTO_LIMITS.keys} per isolate, data per call, key material and costly parameters`, async () => {
    const keys = (await (await call('/keys', undefined, 'subtle-keys')).json()) as { made: number; error: string };
    assert.deepEqual(keys, { made: CRYPTO_LIMITS.keys - 1, error: 'QuotaExceededError' });
    assert.deepEqual(await (await call('/big')).json(), [
      'QuotaExceededError', // data over the per-call cap
      'QuotaExceededError', // key material over its cap
      'ok',
      'NotSupportedError', // HMAC key too long
      'NotSupportedError', // RSA modulus too large to generate
      'NotSupportedError', // PBKDF2 iterations
      'ok',
      'NotSupportedError', // wrapKey
    ]);
  });

  it('frees dropped keys when the table is full, so a key per request keeps working', async () => {
    assert.equal(await (await call('/churn', undefined, 'subtle-churn')).text(), 'made');
  });

  it(`refuses calls past ${CRYPTO_LIMITS.pendingBytes} pending bytes per isolate and answers the others`, async () => {
    await call('/roundtrip'); // the instance is up, so the flood below goes straight in
    const flood = call('/flood');
    await new Promise(setImmediate); // the request is in the isolate
    // This thread holds still while the isolate posts its 40 calls, so they reach the host together,
    // as under load. Otherwise a fast machine finishes each 4 MiB digest before the next call comes
    // and nothing is ever pending (a CI run saw no refusal).
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    const out = (await (await flood).json()) as { refused: string[]; count: number; hashes: string[] };
    assert.deepEqual(out.refused, ['QuotaExceededError']);
    assert.ok(out.count >= 40 - CRYPTO_LIMITS.pendingBytes / (4 * 1024 * 1024) - 4, `refused ${out.count}`);
    assert.deepEqual(out.hashes, [
      createHash('sha256')
        .update(Buffer.alloc(4 * 1024 * 1024))
        .digest('hex'),
    ]);
  });
});
