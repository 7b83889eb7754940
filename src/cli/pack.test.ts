import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { x as extract } from 'tar';
import { CliError } from './errors.js';
import { packDirectory } from './pack.js';

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-pack-'));
  temps.push(dir);
  return dir;
}

function writeTree(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

/** Every regular file under dir as { relative path: content }. */
function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

async function unpack(archive: Buffer): Promise<Record<string, string>> {
  const archivePath = join(tempDir(), 'a.tar.gz');
  writeFileSync(archivePath, archive);
  const out = tempDir();
  await extract({ file: archivePath, cwd: out });
  return readTree(out);
}

describe('packDirectory', () => {
  after(() => {
    for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  });

  it('packs a tree that unpacks to the same files, skipping .git and .nimbus at any depth', async () => {
    const dir = writeTree({
      'index.ts': 'export default {}',
      'nimbus.yaml': 'name: t\n',
      'lib/util.ts': 'export const x = 1;',
      'node_modules/dep/index.js': 'module.exports = 1;',
      'dist/prebuilt.js': 'ok',
      '.git/HEAD': 'ref: refs/heads/main',
      '.nimbus/nimbus.db': 'data',
      'vendor/sub/.git/config': 'x',
    });
    const packed = await packDirectory(dir);
    const files = await unpack(packed.archive);
    assert.deepEqual(files, {
      'dist/prebuilt.js': 'ok',
      'index.ts': 'export default {}',
      'lib/util.ts': 'export const x = 1;',
      'nimbus.yaml': 'name: t\n',
      'node_modules/dep/index.js': 'module.exports = 1;',
    });
    assert.equal(packed.files, 5);
    assert.equal(
      packed.bytes,
      Object.values(files).reduce((n, s) => n + Buffer.byteLength(s), 0),
    );
    assert.deepEqual([...packed.archive.subarray(0, 2)], [0x1f, 0x8b], 'gzip magic');
  });

  it('fails with one clear message for a missing, non-directory or empty path', async () => {
    const file = join(writeTree({ f: 'x' }), 'f');
    await assert.rejects(
      packDirectory(join(tempDir(), 'nope')),
      (e) => e instanceof CliError && /no such directory/.test(e.message),
    );
    await assert.rejects(packDirectory(file), (e) => e instanceof CliError && /not a directory/.test(e.message));
    await assert.rejects(packDirectory(tempDir()), (e) => e instanceof CliError && /empty/.test(e.message));
    await assert.rejects(packDirectory(writeTree({ '.git/HEAD': 'x' })), /empty/);
  });
});
