import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { snapshotKey } from '../../api/snapshot-step.js';
import { buildArtifact } from '../../build/index.js';
import { hasCode } from '../../core/errors.js';
import type { FunctionConfig } from '../../core/types.js';
import { heapLimitMb } from '../sandbox/limits.js';
import { createSnapshotBuilder, explainFailure, type SnapshotBuilder } from './snapshot-builder.js';

const config = (): FunctionConfig => ({
  name: 'snap',
  runtime: 'node',
  handler: 'index.ts',
  env: { GREETING: 'hello' },
  memory: 256,
  network: 'egress',
  timeout: 30,
  concurrency: 10,
  scale: { min: 0, max: 1, idleTimeout: 60 },
});

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The function's artifact on disk, built the way a deploy builds it. */
async function artifactOf(source: string): Promise<{ dir: string; entry: string }> {
  const built = await buildArtifact([{ path: 'index.ts', mode: 0o644, content: Buffer.from(source) }], config());
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-snap-art-'));
  dirs.push(dir);
  for (const f of built.files) writeFileSync(join(dir, f.path), f.content);
  return { dir, entry: built.entry! };
}

/** Starts an instance from a blob, as the process provider does (minus the sandbox); resolves once ready. */
async function restore(blobFile: string, id: string): Promise<{ child: ChildProcess; get(): Promise<any> }> {
  const socket = join(tmpdir(), `nimbus-snap-${process.pid}-${id}.sock`);
  const child = spawn(process.execPath, [`--max-old-space-size=${heapLimitMb(256)}`, '--snapshot-blob', blobFile], {
    env: {
      PATH: process.env.PATH,
      GREETING: 'from-the-instance',
      NIMBUS_ENV_KEYS: '["GREETING"]',
      NIMBUS_SOCKET: socket,
      NIMBUS_INSTANCE: id,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let text = '';
    (child.stdio[3] as Readable).on('data', (chunk: Buffer) => {
      text += chunk;
      if (text.includes('\n')) resolve(text.trim());
    });
    child.once('exit', (code) => reject(new Error(`restored instance exited with ${code}`)));
  });
  assert.deepEqual(JSON.parse(line), { ready: true });
  const get = () =>
    new Promise<any>((resolve, reject) => {
      request({ socketPath: socket, path: '/' }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(JSON.parse(body)));
      })
        .on('error', reject)
        .end();
    });
  return { child, get };
}

describe('snapshot builder', () => {
  let builder: SnapshotBuilder;
  before(() => {
    builder = createSnapshotBuilder({ settleMs: 1000, timeoutMs: 60_000 });
  });
  after(() => builder.close());

  const build = async (source: string) => {
    const { dir, entry } = await artifactOf(source);
    return builder.build({ function: 'snap', artifactDir: dir, entry, env: { GREETING: 'hello' }, memoryMb: 256 });
  };
  const buildError = async (source: string): Promise<string> => {
    try {
      await build(source);
    } catch (err) {
      assert.ok(hasCode(err, 'NIMBUS_ERR_SNAPSHOT_FAILED'), String(err));
      return (err as Error).message;
    }
    throw new Error('the snapshot build was expected to fail');
  };

  test('runs the init once at build; instances restored from one blob are unique and run afterRestore', async () => {
    const { blob } = await build(`
      import { randomUUID } from 'node:crypto';
      let initRuns = 0;
      initRuns++;
      const atInit = { random: Math.random(), uuid: randomUUID(), env: process.env.GREETING };
      let before = 0;
      let restores = 0;
      export function beforeSnapshot() { before++; }
      export async function afterRestore() { await Promise.resolve(); restores++; }
      export default (req: Request, env: Record<string, string>) =>
        Response.json({ initRuns, before, restores, atInit, env: env.GREETING, random: Math.random(),
          uuid: randomUUID(), instance: process.env.NIMBUS_INSTANCE });
    `);
    assert.ok(blob.length > 1024 * 1024, `blob of ${blob.length} bytes`);
    const work = mkdtempSync(join(tmpdir(), 'nimbus-snap-blob-'));
    dirs.push(work);
    const blobFile = join(work, 'snapshot.blob');
    writeFileSync(blobFile, blob);
    const a = await restore(blobFile, 'a');
    const b = await restore(blobFile, 'b');
    try {
      const [ra, rb] = [await a.get(), await b.get()];
      for (const r of [ra, rb]) {
        assert.equal(r.initRuns, 1, 'the init ran at build only');
        assert.equal(r.before, 1, 'beforeSnapshot ran once, at build');
        assert.equal(r.restores, 1, 'afterRestore ran in the instance');
        assert.equal(r.atInit.env, 'hello', 'the init saw the build environment');
        assert.equal(r.env, 'from-the-instance', 'the handler sees the instance environment');
      }
      assert.equal(ra.instance, 'a');
      assert.equal(rb.instance, 'b');
      // Values made at build time are shared by design; values made after restore must not be.
      assert.equal(ra.atInit.uuid, rb.atInit.uuid);
      assert.notEqual(ra.random, rb.random, 'Math.random differs between restored instances');
      assert.notEqual(ra.uuid, rb.uuid, 'crypto.randomUUID differs between restored instances');
      const [ra2, rb2] = [await a.get(), await b.get()];
      assert.notEqual(ra2.uuid, rb2.uuid);
      assert.equal(ra2.restores, 1, 'afterRestore runs once per instance');
    } finally {
      a.child.kill('SIGKILL');
      b.child.kill('SIGKILL');
    }
  });

  test('finds the hooks of a CommonJS (Lambda-style) module on module.exports', async () => {
    const { blob } = await build(`
      let restores = 0;
      module.exports = {
        handler: async () => ({ statusCode: 200, body: JSON.stringify({ restores }) }),
        afterRestore() { restores++; },
      };
    `);
    const work = mkdtempSync(join(tmpdir(), 'nimbus-snap-blob-'));
    dirs.push(work);
    writeFileSync(join(work, 'snapshot.blob'), blob);
    const instance = await restore(join(work, 'snapshot.blob'), 'cjs');
    try {
      assert.deepEqual(await instance.get(), { restores: 1 });
    } finally {
      instance.child.kill('SIGKILL');
    }
  });

  test('a timer left open at init fails the build, naming it', async () => {
    const message = await buildError(`
      setInterval(() => {}, 1000);
      export default () => new Response('ok');
    `);
    assert.match(message, /left handles open.*Timeout/);
  });

  test('beforeSnapshot can close what the init opened', async () => {
    const { blob } = await build(`
      const timer = setInterval(() => {}, 1000);
      export function beforeSnapshot() { clearInterval(timer); }
      export default () => new Response('ok');
    `);
    assert.ok(blob.length > 0);
  });

  test('an init that throws fails the build with its error', async () => {
    assert.match(
      await buildError(`throw new Error('no config'); export default () => 1;`),
      /threw at init.*no config/s,
    );
  });

  test('node:http loaded at init fails the build with a hint', async () => {
    const message = await buildError(`
      import { createServer } from 'node:http';
      export const make = createServer;
      export default () => new Response('ok');
    `);
    assert.match(message, /loaded node:http, which Node cannot put in a snapshot/);
    assert.doesNotMatch(message, /not yet fully verified/);
  });

  test('a Response made at init fails the build with a hint (the web globals load node:http)', async () => {
    const message = await buildError(`
      const notFound = new Response('nope', { status: 404 });
      export default () => notFound.clone();
    `);
    assert.match(message, /web globals built on it \(fetch, Request, Response/);
  });

  test('top-level await cannot go into the CommonJS snapshot entry', async () => {
    assert.match(
      await buildError(`const v = await Promise.resolve(1); export default () => new Response(String(v));`),
      /CommonJS entry.*[Tt]op-level await/s,
    );
  });

  test('the build deadline ends an init that never settles', async () => {
    const slow = createSnapshotBuilder({ settleMs: 60_000, timeoutMs: 1500 });
    try {
      const { dir, entry } = await artifactOf(`setInterval(() => {}, 100); export default () => 1;`);
      await assert.rejects(
        slow.build({ function: 'snap', artifactDir: dir, entry, env: {}, memoryMb: 256 }),
        (err: Error) => hasCode(err, 'NIMBUS_ERR_SNAPSHOT_FAILED') && /did not finish within 2 s/.test(err.message),
      );
    } finally {
      slow.close();
    }
  });
});

describe('explainFailure', () => {
  test('passes the guest message through, explains V8 aborts and other exits', () => {
    assert.equal(
      explainFailure(4, null, 'noise\nThe function left handles open: Timeout'),
      'noise\nThe function left handles open: Timeout',
    );
    const warning = `(node:2) Warning: It's not yet fully verified whether built-in module "node:net" works in user snapshot builder scripts.`;
    assert.match(
      explainFailure(null, 'SIGTRAP', `${warning}\n# Check failed: handle_checker`),
      /could not serialize.*loaded node:net/s,
    );
    assert.equal(explainFailure(9, null, ''), 'node --build-snapshot exited with code 9');
  });
});

describe('snapshotKey', () => {
  const input = { config: config(), digest: 'a'.repeat(64), files: [], entry: 'index.mjs' };
  const versions = { nodeVersion: 'v20.20.2', guestVersion: 'g1' };
  test('changes with what the blob depends on, not with the rest of the config', () => {
    const key = snapshotKey(input, versions);
    assert.equal(snapshotKey({ ...input, config: { ...config(), timeout: 99 } }, versions), key);
    assert.notEqual(snapshotKey(input, { ...versions, nodeVersion: 'v20.20.3' }), key);
    assert.notEqual(snapshotKey(input, { ...versions, guestVersion: 'g2' }), key);
    assert.notEqual(snapshotKey({ ...input, digest: 'b'.repeat(64) }, versions), key);
    assert.notEqual(snapshotKey({ ...input, config: { ...config(), env: {} } }, versions), key);
    assert.notEqual(snapshotKey({ ...input, config: { ...config(), memory: 512 } }, versions), key);
  });
});
