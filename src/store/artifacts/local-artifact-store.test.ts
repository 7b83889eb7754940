import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { artifactDigest } from './digest.js';
import { createLocalArtifactStore } from './local-artifact-store.js';
import { file, tree } from './test-tree.js';

const base = mkdtempSync(join(tmpdir(), 'nimbus-artifacts-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshStore = () => {
  const dir = join(base, `s${++n}`);
  return { dir, store: createLocalArtifactStore({ dir }) };
};
const invalidRequest = { code: 'NIMBUS_ERR_INVALID_REQUEST' };

describe('artifact digest', () => {
  it('follows the documented byte encoding', () => {
    const files = [file('b.txt', 'hi'), file('a/x', '', 0o700)];
    const expected = createHash('sha256')
      .update('nimbus-artifact-v1\0')
      .update('a/x\x00755\x000\x00')
      .update('b.txt\x00644\x002\x00hi')
      .digest('hex');
    assert.equal(artifactDigest(files), expected);
  });
  it('ignores input order and permission bits other than executable', () => {
    const reordered = [tree[2]!, tree[0]!, { ...tree[1]!, mode: 0o600 }];
    assert.equal(artifactDigest(reordered), artifactDigest(tree));
    assert.equal(artifactDigest([{ ...tree[2]!, mode: 0o700 }, tree[0]!, tree[1]!]), artifactDigest(tree));
  });
  it('changes with content, path or the executable bit', () => {
    const d = artifactDigest(tree);
    assert.notEqual(artifactDigest([file('index.mjs', 'export default 2;\n'), tree[1]!, tree[2]!]), d);
    assert.notEqual(artifactDigest([file('main.mjs', 'export default 1;\n'), tree[1]!, tree[2]!]), d);
    assert.notEqual(artifactDigest([tree[0]!, tree[1]!, { ...tree[2]!, mode: 0o644 }]), d);
    // Moving bytes between path and content must not collide.
    assert.notEqual(artifactDigest([file('ab', 'c')]), artifactDigest([file('a', 'bc')]));
  });
  it('sorts by UTF-8 bytes, so the digest does not depend on JS string order', () => {
    const a = [file('\u{1F600}', '1'), file('\uFFFD', '2')];
    assert.equal(artifactDigest(a), artifactDigest([...a].reverse()));
  });
});

describe('local artifact store', () => {
  it('stores the tree under DIR/sha256/<digest>/ with read-only files and directories', async () => {
    const { dir, store } = freshStore();
    const digest = await store.put(tree);
    assert.equal(digest, artifactDigest(tree));
    assert.equal(await store.has(digest), true);
    const path = await store.localPath(digest);
    assert.equal(path, join(dir, 'sha256', digest));
    assert.equal(readFileSync(join(path, 'lib/util.mjs'), 'utf8'), 'x');
    assert.equal(statSync(join(path, 'index.mjs')).mode & 0o777, 0o444);
    assert.equal(statSync(join(path, 'bin/run')).mode & 0o777, 0o555);
    assert.equal(statSync(join(path, 'lib')).mode & 0o777, 0o555);
    assert.equal(statSync(path).mode & 0o777, 0o555);
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
  });

  it('is idempotent, also for concurrent puts of the same tree', async () => {
    const { dir, store } = freshStore();
    const [d1, d2, d3] = await Promise.all([store.put(tree), store.put(tree), store.put([...tree].reverse())]);
    assert.equal(d1, d2);
    assert.equal(d1, d3);
    assert.equal(await store.put(tree), d1);
    assert.deepEqual(readdirSync(join(dir, 'sha256')), [d1]);
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
  });

  it('stores an empty tree', async () => {
    const { store } = freshStore();
    const digest = await store.put([]);
    assert.deepEqual(readdirSync(await store.localPath(digest)), []);
  });

  it('deletes an artifact; deleting again or an unknown digest is not an error', async () => {
    const { dir, store } = freshStore();
    const digest = await store.put(tree);
    await store.delete(digest);
    assert.equal(await store.has(digest), false);
    assert.equal(existsSync(join(dir, 'sha256', digest)), false);
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
    await store.delete(digest);
    await store.delete('not-a-digest');
    // And it can be stored again.
    assert.equal(await store.put(tree), digest);
  });

  it('localPath of an absent artifact throws NIMBUS_ERR_REVISION_NOT_FOUND', async () => {
    const { store } = freshStore();
    await assert.rejects(store.localPath('0'.repeat(64)), { code: 'NIMBUS_ERR_REVISION_NOT_FOUND' });
    await assert.rejects(store.localPath('../../etc'), { code: 'NIMBUS_ERR_REVISION_NOT_FOUND' });
    assert.equal(await store.has('../sha256'), false);
  });

  it('refuses paths that could leave the artifact directory, and writes nothing', async () => {
    const { dir, store } = freshStore();
    const bad: [string, RegExp][] = [
      ['/etc/passwd', /absolute/],
      ['../escape', /"\.\."/],
      ['a/../../escape', /"\.\."/],
      ['a//b', /empty/],
      ['./a', /"\."/],
      ['a\\..\\b', /backslash/],
      ['', /empty/],
    ];
    for (const [path, message] of bad) {
      await assert.rejects(store.put([file(path, 'x')]), { ...invalidRequest, message }, path);
    }
    assert.equal(existsSync(join(dir, 'sha256')), false);
  });

  it('refuses duplicate paths and a path that is both a file and a directory', async () => {
    const { store } = freshStore();
    await assert.rejects(store.put([file('a', '1'), file('a', '2')]), { ...invalidRequest, message: /twice/ });
    await assert.rejects(store.put([file('a', '1'), file('a/b', '2')]), { ...invalidRequest, message: /also a file/ });
  });
});
