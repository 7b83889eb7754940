import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { unpackArchive } from './archive.js';
import { fixtureDir, packDir, rawTarGz } from './test-support.js';

const scratch = mkdtempSync(join(tmpdir(), 'nimbus-archive-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const invalidArchive = (message: RegExp) => ({ code: 'NIMBUS_ERR_INVALID_ARCHIVE', message });

describe('unpackArchive', () => {
  it('returns the files of a packed folder with paths cleaned of "./", sorted, directories skipped', async () => {
    const files = await unpackArchive(await packDir(fixtureDir('ts-fetch')));
    assert.deepEqual(
      files.map((f) => f.path),
      ['index.ts', 'lib/greet.ts'],
    );
    assert.deepEqual(files[1]!.content, readFileSync(join(fixtureDir('ts-fetch'), 'lib/greet.ts')));
  });

  it('keeps the mode bits, so executables stay executable', async () => {
    const files = await unpackArchive(await packDir(fixtureDir('app-python')));
    const server = files.find((f) => f.path === 'server.py')!;
    assert.equal(server.mode & 0o111, 0o111);
    assert.equal(files.find((f) => f.path === 'nimbus.yaml')!.mode & 0o111, 0);
  });

  it('includes node_modules', async () => {
    const files = await unpackArchive(await packDir(fixtureDir('cjs-dep')));
    assert.ok(files.some((f) => f.path === 'node_modules/greeting-cjs/index.js'));
  });

  it('turns symlinks inside the tree into copies of their targets (files and folders)', async () => {
    const dir = join(scratch, 'links');
    mkdirSync(join(dir, 'lib/deep'), { recursive: true });
    writeFileSync(join(dir, 'lib/deep/a.txt'), 'A');
    symlinkSync('deep/a.txt', join(dir, 'lib/alias.txt'));
    symlinkSync('lib', join(dir, 'libdir'));
    symlinkSync('missing.txt', join(dir, 'dangling'));
    const files = await unpackArchive(await packDir(dir));
    assert.deepEqual(
      files.map((f) => [f.path, f.content.toString()]),
      [
        ['lib/alias.txt', 'A'],
        ['lib/deep/a.txt', 'A'],
        ['libdir/alias.txt', 'A'],
        ['libdir/deep/a.txt', 'A'],
      ],
    );
  });

  it('turns in-archive hard links into copies', async () => {
    const files = await unpackArchive(
      rawTarGz([
        { path: 'a.txt', content: 'same' },
        { path: 'b.txt', type: 'Link', linkpath: 'a.txt' },
      ]),
    );
    assert.deepEqual(
      files.map((f) => [f.path, f.content.toString()]),
      [
        ['a.txt', 'same'],
        ['b.txt', 'same'],
      ],
    );
  });

  it('returns no files for an empty folder', async () => {
    const dir = join(scratch, 'empty');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    assert.deepEqual(await unpackArchive(await packDir(dir)), []);
  });

  describe('refuses', () => {
    it('bytes that are not gzip', async () => {
      await assert.rejects(unpackArchive(Buffer.from('definitely not an archive')), invalidArchive(/not gzip data/));
      await assert.rejects(unpackArchive(Buffer.alloc(0)), invalidArchive(/not gzip data/));
    });
    it('gzip data that is not a tar', async () => {
      await assert.rejects(
        unpackArchive(gzipSync('just some text, no tar headers here')),
        invalidArchive(/not a readable tar\.gz/),
      );
    });
    it('a truncated archive', async () => {
      const whole = await packDir(fixtureDir('ts-fetch'));
      await assert.rejects(
        unpackArchive(whole.subarray(0, whole.length / 2)),
        invalidArchive(/not a readable tar\.gz/),
      );
    });
    it('an entry with a ".." path, naming it', async () => {
      await assert.rejects(
        unpackArchive(rawTarGz([{ path: '../evil.js', content: 'x' }])),
        invalidArchive(/entry "\.\.\/evil\.js" points outside the archive/),
      );
      await assert.rejects(
        unpackArchive(rawTarGz([{ path: 'a/../../evil.js', content: 'x' }])),
        invalidArchive(/"a\/\.\.\/\.\.\/evil\.js" points outside/),
      );
    });
    it('an entry with an absolute path', async () => {
      await assert.rejects(
        unpackArchive(rawTarGz([{ path: '/etc/cron.d/evil', content: 'x' }])),
        invalidArchive(/"\/etc\/cron\.d\/evil" has an absolute path/),
      );
    });
    it('a symlink that points outside the tree', async () => {
      await assert.rejects(
        unpackArchive(rawTarGz([{ path: 'passwd', type: 'SymbolicLink', linkpath: '../../etc/passwd' }])),
        invalidArchive(/symlink passwd -> \.\.\/\.\.\/etc\/passwd points outside the archive/),
      );
      await assert.rejects(
        unpackArchive(rawTarGz([{ path: 'a/b/up', type: 'SymbolicLink', linkpath: '../../..' }])),
        invalidArchive(/symlink a\/b\/up -> \.\.\/\.\.\/\.\. points outside/),
      );
      await assert.rejects(
        unpackArchive(rawTarGz([{ path: 'passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' }])),
        invalidArchive(/absolute target/),
      );
    });
    it('a symlink made on disk that points outside the packed folder', async () => {
      const dir = join(scratch, 'escape');
      mkdirSync(dir);
      writeFileSync(join(dir, 'index.js'), 'export default 1;');
      symlinkSync('/etc/hostname', join(dir, 'host'));
      await assert.rejects(unpackArchive(await packDir(dir)), invalidArchive(/symlink host -> \/etc\/hostname/));
    });
    it('a hard link that points outside the tree', async () => {
      await assert.rejects(
        unpackArchive(rawTarGz([{ path: 'shadow', type: 'Link', linkpath: '../etc/shadow' }])),
        invalidArchive(/hard link shadow -> \.\.\/etc\/shadow points outside/),
      );
    });
    it('device files and FIFOs', async () => {
      await assert.rejects(
        unpackArchive(rawTarGz([{ path: 'dev/null', type: 'CharacterDevice', devmaj: 1, devmin: 3 }])),
        invalidArchive(/dev\/null is a device file or FIFO \(CharacterDevice\)/),
      );
      await assert.rejects(unpackArchive(rawTarGz([{ path: 'pipe', type: 'FIFO' }])), invalidArchive(/FIFO/));
    });
    it('more files than maxFiles, and more bytes than maxBytes', async () => {
      const archive = rawTarGz([
        { path: 'a', content: '1234' },
        { path: 'b', content: '1234' },
        { path: 'c', content: '1234' },
      ]);
      await assert.rejects(unpackArchive(archive, { maxFiles: 2 }), invalidArchive(/more than 2 files/));
      await assert.rejects(
        unpackArchive(archive, { maxBytes: 10 }),
        invalidArchive(/more than 10 bytes once unpacked/),
      );
      assert.equal((await unpackArchive(archive, { maxFiles: 3, maxBytes: 12 })).length, 3);
    });
    it('a path that is both a file and a folder', async () => {
      await assert.rejects(
        unpackArchive(
          rawTarGz([
            { path: 'a', content: '1' },
            { path: 'a/b', content: '2' },
          ]),
        ),
        invalidArchive(/a is both a file and a folder/),
      );
    });
  });
});
