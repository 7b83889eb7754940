import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { FunctionConfig } from '../core/types.js';
import { artifactDigest } from '../store/artifacts/digest.js';
import { type SourceFile, unpackArchive } from './archive.js';
import { buildArtifact } from './bundle.js';
import { resolveConfig } from './config.js';
import { configIdentity } from './identity.js';
import { fixtureDir, packDir } from './test-support.js';

const scratch = mkdtempSync(join(tmpdir(), 'nimbus-bundle-test-'));
// buildArtifact makes its work dirs in os.tmpdir(); point that at a private folder to check cleanup.
const buildTmp = join(scratch, 'tmp');
const savedTmp = process.env.TMPDIR;
before(() => {
  mkdirSync(buildTmp);
  process.env.TMPDIR = buildTmp;
});
after(() => {
  process.env.TMPDIR = savedTmp;
  rmSync(scratch, { recursive: true, force: true });
});

/** Fixture folder → real tar.gz → files → config → artifact, as the deploy endpoint does it. */
async function buildFixture(name: string, overrides: Record<string, unknown> = {}) {
  const files = await unpackArchive(await packDir(fixtureDir(name)));
  const config = resolveConfig(files, overrides, name);
  return { files, config, result: await buildArtifact(files, config) };
}

let loads = 0;
/** Writes the artifact to disk and imports its entry, like the process runtime would. */
async function load(result: Awaited<ReturnType<typeof buildArtifact>>): Promise<Record<string, any>> {
  const dir = join(scratch, `artifact-${++loads}`);
  for (const f of result.files) {
    mkdirSync(join(dir, f.path, '..'), { recursive: true });
    writeFileSync(join(dir, f.path), f.content);
  }
  return import(pathToFileURL(join(dir, result.entry!)).href);
}

const nodeConfig = (handler: string): FunctionConfig =>
  resolveConfig([{ path: handler, mode: 0o644, content: Buffer.alloc(0) }], { handler }, 'fn');
const source = (files: Record<string, string>): SourceFile[] =>
  Object.entries(files).map(([path, text]) => ({ path, mode: 0o644, content: Buffer.from(text) }));

describe('buildArtifact', () => {
  it('bundles a TypeScript fetch function and its local helper into index.mjs + map', async () => {
    const { result } = await buildFixture('ts-fetch');
    assert.equal(result.entry, 'index.mjs');
    assert.deepEqual(result.files.map((f) => f.path).sort(), ['index.mjs', 'index.mjs.map']);
    const code = result.files.find((f) => f.path === 'index.mjs')!.content.toString();
    assert.doesNotMatch(code, /from ['"]\.\/lib/, 'the helper is inlined');
    assert.match(code, /sourceMappingURL=index\.mjs\.map/);
    const mod = await load(result);
    const res: Response = await mod.default.fetch(new Request('http://fn.test/?name=Ada'));
    assert.equal(await res.text(), 'Hello, Ada!');
  });

  it('bundles for runtime isolate without the Node require banner, and refuses Lambda handlers there', async () => {
    const { result } = await buildFixture('ts-fetch', { runtime: 'isolate' });
    const code = result.files.find((f) => f.path === 'index.mjs')!.content.toString();
    assert.doesNotMatch(code, /node:module/, 'no createRequire: there is no Node in an isolate');
    const mod = await load(result);
    assert.equal(await (await mod.default.fetch(new Request('http://fn.test/?name=Ada'))).text(), 'Hello, Ada!');
    await assert.rejects(buildFixture('lambda-js', { runtime: 'isolate' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'NIMBUS_ERR_HANDLER_NOT_FOUND');
      assert.match(err.message, /runtime isolate runs fetch handlers only/);
      return true;
    });
  });

  it('bundles a Lambda-style function exporting handler', async () => {
    const mod = await load((await buildFixture('lambda-js')).result);
    assert.deepEqual(await mod.handler({ body: 'hi' }), { statusCode: 200, body: '{"echo":"hi"}' });
  });

  it('bundles a CommonJS dependency from node_modules whose require() works in the ESM bundle', async () => {
    const mod = await load((await buildFixture('cjs-dep')).result);
    const res: Response = await mod.default.fetch(new Request('http://fn.test/'));
    assert.equal(await res.text(), 'hello cjs (sep /)');
  });

  it('works when the user module itself imports createRequire and declares require', async () => {
    const files = source({
      'index.mjs': [
        "import { createRequire } from 'node:module';",
        'const require = createRequire(import.meta.url);',
        "const os = require('node:os');",
        'export default { fetch: () => new Response(typeof os.cpus) };',
      ].join('\n'),
    });
    const mod = await load(await buildArtifact(files, nodeConfig('index.mjs')));
    assert.equal(await (await mod.default.fetch(new Request('http://fn.test/'))).text(), 'function');
  });

  it('reports a syntax error with file, line and column', async () => {
    await assert.rejects(buildFixture('syntax-error'), (err: any) => {
      assert.equal(err.code, 'NIMBUS_ERR_BUILD_FAILED');
      assert.equal(err.message, 'index.js:3:17: Expected ";" but found "x"');
      assert.deepEqual(
        { file: err.details.file, line: err.details.line, column: err.details.column },
        { file: 'index.js', line: 3, column: 17 },
      );
      return true;
    });
  });

  it('reports an import that cannot be resolved, counting the other errors', async () => {
    const files = source({
      'index.ts': "import a from './nope.js';\nimport b from 'left-pad';\nexport default { a, b };\n",
    });
    await assert.rejects(buildArtifact(files, nodeConfig('index.ts')), {
      code: 'NIMBUS_ERR_BUILD_FAILED',
      message: 'index.ts:1:15: Could not resolve "./nope.js" (and 1 more error)',
    });
  });

  it('refuses an entry that exports neither default nor handler, saying what it exports', async () => {
    await assert.rejects(buildFixture('no-export'), {
      code: 'NIMBUS_ERR_HANDLER_NOT_FOUND',
      message:
        /^index\.ts does not export `default` \(a fetch handler\) or `handler` \(Lambda style\); it exports: helper, version$/,
    });
    await assert.rejects(buildArtifact(source({ 'index.js': 'console.log(1);\n' }), nodeConfig('index.js')), {
      code: 'NIMBUS_ERR_HANDLER_NOT_FOUND',
      message: /it exports nothing$/,
    });
  });

  it('refuses a handler file that is not in the source, naming it', async () => {
    await assert.rejects(buildArtifact(source({ 'index.js': '' }), nodeConfig('src/main.ts')), {
      code: 'NIMBUS_ERR_INVALID_MANIFEST',
      message: 'handler: file "src/main.ts" not found in the source',
    });
  });

  it('keeps an app-mode tree as it is, with the executable bit, and no entry', async () => {
    const { files, result } = await buildFixture('app-python');
    assert.equal(result.entry, undefined);
    assert.deepEqual(
      result.files.map((f) => [f.path, f.mode.toString(8)]),
      [
        ['nimbus.yaml', '644'],
        ['server.py', '755'],
      ],
    );
    assert.deepEqual(
      result.files.map((f) => f.content),
      files.map((f) => f.content),
    );
  });

  it('leaves no work directory behind, after success or failure', () => {
    assert.deepEqual(readdirSync(buildTmp), []);
  });
});

describe('configIdentity', () => {
  /** The identity the deploy endpoint would compute for a folder. */
  async function identityOf(dir: string, overrides: Record<string, unknown> = {}) {
    const files = await unpackArchive(await packDir(dir));
    const config = resolveConfig(files, overrides, 'same-name');
    const { files: artifact } = await buildArtifact(files, config);
    return configIdentity(artifactDigest(artifact), config);
  }

  it('is equal for identical folders packed at different times, and differs when config changes', async () => {
    const a = join(scratch, 'copy-a');
    const b = join(scratch, 'copy-b');
    cpSync(fixtureDir('ts-fetch'), a, { recursive: true });
    cpSync(fixtureDir('ts-fetch'), b, { recursive: true });
    utimesSync(join(b, 'index.ts'), new Date('2001-01-01'), new Date('2001-01-01'));
    utimesSync(join(b, 'lib/greet.ts'), new Date('2030-06-01'), new Date('2030-06-01'));
    const first = await identityOf(a);
    assert.match(first, /^[0-9a-f]{64}$/);
    assert.equal(await identityOf(b), first);
    assert.notEqual(await identityOf(b, { memory: 512 }), first);
    assert.notEqual(await identityOf(b, { env: { A: '1' } }), first);
    writeFileSync(join(b, 'lib/greet.ts'), 'export const greet = (n: string) => "Hi " + n;\n');
    assert.notEqual(await identityOf(b), first);
  });

  it('does not depend on the order of config keys', () => {
    const config = nodeConfig('index.js');
    const reordered = Object.fromEntries(Object.entries(config).reverse()) as unknown as FunctionConfig;
    reordered.scale = Object.fromEntries(Object.entries(config.scale).reverse()) as unknown as FunctionConfig['scale'];
    assert.equal(configIdentity('d', reordered), configIdentity('d', config));
    assert.notEqual(configIdentity('e', config), configIdentity('d', config));
  });
});
