import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createProcessRuntime } from '../process/process-runtime.js';
import type { RuntimeEvent } from '../types.js';
import type { CriuSupport } from './detect.js';
import { type CriuRuntime, createCriuRuntime, criuSupport, DETECTING, unsupportedReason } from './index.js';
import { appSpecs } from './test-spec.js';

// Asked once for the file (detect.ts): every CRIU test below skips with its reason where it cannot run.
const support = await criuSupport();

const KEY = 'test-identity';
const spec = appSpecs('py-app', KEY, 'none');

describe('unsupportedReason', () => {
  const ok = { available: true, path: '/usr/local/sbin/criu' };
  it('says why a revision cannot be restored', () => {
    assert.match(
      unsupportedReason({ kind: 'app', network: 'none' }, { available: false, reason: 'x' }, true, true)!,
      /not available: x/,
    );
    assert.match(unsupportedReason({ kind: 'node', network: 'none' }, ok, true, true)!, /app mode/);
    assert.match(unsupportedReason({ kind: 'app', network: 'egress' }, ok, true, false)!, /need slirp4netns/);
    assert.match(unsupportedReason({ kind: 'app', network: 'none' }, ok, false, true)!, /sandboxed/);
    assert.equal(unsupportedReason({ kind: 'app', network: 'none' }, ok, true, true), undefined);
  });
});

describe('CRIU detection holds no start', () => {
  // Runs on every machine: the verdict comes from the test, the app is a real sandboxed one.
  it('starts normally while the verdict is pending, answers status once it is in, then checkpoints', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-criu-pending-'));
    let settle!: (s: CriuSupport) => void;
    const verdict = new Promise<CriuSupport>((resolve) => (settle = resolve));
    const rt = createCriuRuntime({ inner: createProcessRuntime({ poolSize: 0 }), dir, detect: () => verdict });
    try {
      const first = await rt.start(spec('pending'));
      assert.notEqual(first.startMode, 'criu', 'a plain start, not held for the verdict');
      assert.equal(rt.support, DETECTING);
      let answered = false;
      const status = rt.status({ kind: 'app', network: 'none', checkpoint: KEY }).then((s) => {
        answered = true;
        return s;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(answered, false, 'status waits for the verdict');
      // A criu that is not there: the checkpoint the verdict allows is tried, and fails saying why.
      settle({ available: true, path: '/nonexistent/criu', version: '0.0' });
      assert.notEqual((await status)?.state, 'unsupported', JSON.stringify(await status));
      await rt.settled(KEY);
      const made = (await rt.status({ kind: 'app', network: 'none', checkpoint: KEY }))!;
      assert.equal(made.state, 'failed', JSON.stringify(made));
      await rt.stop('pending');
    } finally {
      await rt.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CRIU detection and an image on disk (a restarted node)', () => {
  // Runs on every machine: what matters is when the inner runtime is asked, not whether CRIU works.
  it('a start waits briefly for the verdict (a restore may follow), and never longer than its bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-criu-restart-'));
    mkdirSync(join(dir, KEY)); // an image left by the node's previous process
    const processes = createProcessRuntime({ poolSize: 0 });
    let settled = false;
    const innerStarts: boolean[] = [];
    const inner = {
      ...processes,
      start: (...args: Parameters<typeof processes.start>) => {
        innerStarts.push(settled);
        return processes.start(...args);
      },
    };
    let settle!: (s: CriuSupport) => void;
    const held = new Promise<CriuSupport>((resolve) => (settle = resolve));
    const rt = createCriuRuntime({ inner, dir, detect: () => held });
    const never = createCriuRuntime({
      inner: createProcessRuntime({ poolSize: 0 }),
      dir,
      detect: () => new Promise<CriuSupport>(() => {}),
    });
    try {
      const starting = rt.start(spec('waits'));
      setTimeout(() => {
        settled = true;
        settle({ available: false, reason: 'not on this test machine' });
      }, 200);
      assert.notEqual((await starting).startMode, 'criu');
      assert.deepEqual(innerStarts, [true], 'the plain start came after the verdict, not before');
      // A verdict that never comes (a hung probe): the start goes on plainly after the bound.
      const plain = await never.start(spec('bounded'));
      assert.notEqual(plain.startMode, 'criu');
      assert.equal(never.support, DETECTING);
      await Promise.all([rt.stop('waits'), never.stop('bounded')]);
    } finally {
      await Promise.all([rt.close(), never.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CRIU runtime (real criu, sandboxed python app)', () => {
  let dir: string;
  let rt: CriuRuntime;
  const events: RuntimeEvent[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-criu-test-'));
    const inner = createProcessRuntime({ poolSize: 0 });
    rt = createCriuRuntime({ inner, dir });
    rt.subscribe((e) => events.push(e));
  });
  after(async () => {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('checkpoints after the first start, restores side by side, falls back when the image is broken', async (t) => {
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    const status = (await rt.status({ kind: 'app', network: 'none', checkpoint: KEY }))!;
    if (status.state === 'unsupported') return t.skip(`criu not usable: ${status.reason}`);

    const first = await rt.start(spec('a'));
    assert.notEqual(first.startMode, 'criu', 'the first start is a normal one');
    await rt.settled(KEY);
    const made = (await rt.status({ kind: 'app', network: 'none', checkpoint: KEY }))!;
    assert.equal(made.state, 'ready', JSON.stringify(made));
    assert.equal(made.restores, true);
    await rt.stop('a');

    const [b, c] = await Promise.all([rt.start(spec('b')), rt.start(spec('c'))]);
    assert.equal(b.startMode, 'criu');
    assert.equal(c.startMode, 'criu');
    assert.notEqual(b.pid, c.pid);
    for (const [instance, path] of [
      [b, '/one'],
      [c, '/two'],
    ] as const) {
      const res = await instance.fetch(new Request(`http://instance${path}`));
      assert.deepEqual(await res.json(), { lang: 'python', method: 'GET', path, body: '' });
    }
    assert.ok(rt.stats('b')!.pids >= 2, 'the restored processes are in the instance cgroup');
    // Still sandboxed: nobody, pid 1 of a pid namespace of its own, its own network namespace,
    // the sandbox's mounts (the code at /nimbus/code, not the host's /work).
    for (const instance of [b, c]) {
      const status = readFileSync(`/proc/${instance.pid}/status`, 'utf8');
      assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
      assert.match(status, /^NSpid:\s+\d+\s+1$/m);
      assert.ok(existsSync(`/proc/${instance.pid}/root/nimbus/code/server.py`));
      assert.ok(!existsSync(`/proc/${instance.pid}/root/work`));
    }
    assert.notEqual(readlinkSync(`/proc/${b.pid}/ns/net`), readlinkSync(`/proc/${c.pid}/ns/net`));
    assert.notEqual(readlinkSync(`/proc/${b.pid}/ns/net`), readlinkSync('/proc/self/ns/net'));
    assert.equal((await rt.status({ kind: 'app', network: 'none', checkpoint: KEY }))!.restored, 2);
    assert.equal(await rt.freeze('b'), true);
    assert.equal(await rt.thaw('b'), true);
    await Promise.all([rt.stop('b'), rt.stop('c')]);
    assert.equal(rt.list().length, 0);
    assert.ok(events.some((e) => e.type === 'state' && e.id === 'b' && e.state === 'stopped'));

    // A broken image: the restore fails, the instance starts normally, a system line says why.
    const image = join(dir, KEY, 'img', 'pstree.img');
    truncateSync(image, 3);
    const d = await rt.start(spec('d'));
    assert.notEqual(d.startMode, 'criu');
    const res = await d.fetch(new Request('http://instance/after'));
    assert.equal(((await res.json()) as { path: string }).path, '/after');
    const line = events.find((e) => e.type === 'log' && e.id === 'd' && e.stream === 'system');
    assert.match(
      line && 'line' in line ? line.line : '',
      /CRIU restore failed, starting normally: criu restore failed/,
    );
    await rt.stop('d');
  });

  it('leaves specs without checkpoint to the inner runtime', async (t) => {
    assert.equal(await rt.status({ kind: 'app', network: 'none' }), undefined);
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    const plain = await rt.start(spec('e', { checkpoint: undefined }));
    assert.notEqual(plain.startMode, 'criu');
    await rt.stop('e');
  });
});
