import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createProcessRuntime } from '../process/process-runtime.js';
import type { Instance } from '../types.js';
import { type CriuRuntime, createCriuRuntime, criuSupport, unsupportedReason } from './index.js';
import { findSlirp, NO_SLIRP_REASON, slirpArgs } from './network.js';
import { appSpecs, slirpsOf } from './test-spec.js';

// Asked once for the file (detect.ts): every CRIU test below skips with its reason where it cannot run.
const support = await criuSupport();

const KEY = 'egress-identity';
const spec = appSpecs('py-egress', KEY, 'egress');

const json = async (instance: Instance, path: string) =>
  (await (await instance.fetch(new Request(`http://instance${path}`))).json()) as Record<string, unknown>;

/** This machine's first non-loopback IPv4 address: the test server the instances call listens there. */
const hostAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

function listen(host: string, onRequest: (path: string) => string): Promise<Server> {
  const server = createServer((req, res) => res.end(onRequest(req.url ?? '')));
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}
const port = (s: Server) => (s.address() as AddressInfo).port;

describe('slirp4netns arguments and the reason without it', () => {
  it('attaches to the pid with host loopback off, sandboxed, ending with its exit fd', () => {
    const args = slirpArgs(42);
    assert.deepEqual(args.slice(-2), ['42', 'tap0']);
    for (const a of ['--configure', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', '--exit-fd=3'])
      assert.ok(args.includes(a), a);
    const ok = { available: true, path: '/usr/local/sbin/criu' };
    assert.equal(unsupportedReason({ kind: 'app', network: 'egress' }, ok, true, false), NO_SLIRP_REASON);
    assert.equal(unsupportedReason({ kind: 'app', network: 'egress' }, ok, true, true), undefined);
    assert.equal(unsupportedReason({ kind: 'app', network: 'none' }, ok, true, false), undefined);
  });
});

describe('CRIU restores of network: egress apps (real criu and slirp4netns)', () => {
  const slirp = findSlirp();
  let dir: string;
  let rt: CriuRuntime;
  let outside: Server;
  let loopback: Server;
  const hits: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-criu-egress-'));
    rt = createCriuRuntime({ inner: createProcessRuntime({ poolSize: 0 }), dir });
    outside = await listen(hostAddress ?? '127.0.0.1', (path) => {
      hits.push(path);
      return `hello from the host ${path}`;
    });
    loopback = await listen('127.0.0.1', () => 'host loopback');
  });
  after(async () => {
    await rt.close();
    outside.close();
    loopback.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('restores side by side, each in its own network with outbound connections, and stops its slirp4netns', async (t) => {
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    if (!slirp) return t.skip(`criu restores of egress apps not available: ${NO_SLIRP_REASON}`);
    assert.ok(hostAddress, 'this machine has a non-loopback IPv4 address for the test server');
    const status = (await rt.status({ kind: 'app', network: 'egress', checkpoint: KEY }))!;
    if (status.state === 'unsupported') return t.skip(`criu not usable: ${status.reason}`);

    const first = await rt.start(spec('a'));
    assert.notEqual(first.startMode, 'criu', 'the first start is a normal one');
    await rt.settled(KEY);
    const made = (await rt.status({ kind: 'app', network: 'egress', checkpoint: KEY }))!;
    assert.equal(made.state, 'ready', JSON.stringify(made));
    await rt.stop('a');

    const [b, c] = await Promise.all([rt.start(spec('b')), rt.start(spec('c'))]);
    assert.equal(b.startMode, 'criu');
    assert.equal(c.startMode, 'criu');
    const helpers = new Map<Instance, number>();
    for (const [instance, name] of [
      [b, 'b'],
      [c, 'c'],
    ] as const) {
      // Outbound: through its slirp4netns to the test server on this machine's own address.
      const url: string = `http://${hostAddress}:${port(outside)}/from-${name}`;
      assert.deepEqual(await json(instance, `/fetch?url=${encodeURIComponent(url)}`), {
        ok: true,
        status: 200,
        body: `hello from the host /from-${name}`,
      });
      // The node's loopback services stay out of reach (--disable-host-loopback).
      const blocked = await json(instance, `/fetch?url=${encodeURIComponent(`http://10.0.2.2:${port(loopback)}/`)}`);
      assert.equal(blocked.ok, false, JSON.stringify(blocked));
      // Each app is its own: a note left in one is not seen by the other.
      assert.deepEqual(await json(instance, `/note?set=note+of+${name}`), {
        note: `note of ${name}`,
      });
      const pids = slirpsOf(instance.pid!);
      assert.equal(pids.length, 1, `one slirp4netns for ${name}`);
      helpers.set(instance, pids[0]!);
      // In the instance's cgroup: counted there, and killed with it.
      assert.match(readFileSync(`/proc/${pids[0]}/cgroup`, 'utf8'), /criu-\d+-/);
    }
    assert.deepEqual(await json(b, '/note'), { note: 'note of b' });
    assert.deepEqual(await json(c, '/note'), { note: 'note of c' });
    assert.deepEqual([...hits].sort(), ['/from-b', '/from-c']);
    assert.notEqual(readlinkSync(`/proc/${b.pid}/ns/net`), readlinkSync(`/proc/${c.pid}/ns/net`));
    assert.notEqual(readlinkSync(`/proc/${b.pid}/ns/net`), readlinkSync('/proc/self/ns/net'));
    // Frozen and thawed with its instance (one cgroup): the network works again after the thaw.
    assert.equal(await rt.freeze('b'), true);
    assert.equal(await rt.thaw('b'), true);
    const again = await json(b, `/fetch?url=${encodeURIComponent(`http://${hostAddress}:${port(outside)}/again`)}`);
    assert.equal(again.body, 'hello from the host /again');

    await Promise.all([rt.stop('b'), rt.stop('c')]);
    for (const pid of helpers.values()) assert.ok(!existsSync(`/proc/${pid}`), `slirp4netns ${pid} is gone`);
    assert.equal(rt.list().length, 0);
  });

  it('an app whose init needs the network is not checkpointed, and the status says why', async (t) => {
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    if (!slirp) return t.skip(`criu restores of egress apps not available: ${NO_SLIRP_REASON}`);
    const key = 'egress-init-needs-network';
    const env = { INIT_URL: `http://${hostAddress}:${port(outside)}/init` };
    const first = await rt.start(spec('i', { checkpoint: key, env }));
    assert.notEqual(first.startMode, 'criu', 'a normal start: the host network, init reaches the server');
    await rt.settled(key);
    const status = (await rt.status({ kind: 'app', network: 'egress', checkpoint: key }))!;
    assert.equal(status.state, 'failed', JSON.stringify(status));
    assert.match(status.reason!, /loopback only: its init cannot use the network\) did not get ready/);
    const second = await rt.start(spec('j', { checkpoint: key, env }));
    assert.notEqual(second.startMode, 'criu');
    await Promise.all([rt.stop('i'), rt.stop('j')]);
  });

  it('a kill -9 of the node process ends the instance network helper too', async (t) => {
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    if (!slirp) return t.skip(`criu restores of egress apps not available: ${NO_SLIRP_REASON}`);
    if (!existsSync(join(dir, KEY))) return t.skip('no image was made (the restore test did not get that far)');
    // Another node process restores one instance from the same image, then is killed with SIGKILL.
    const code = `
      import { createCriuRuntime } from ${JSON.stringify(join(import.meta.dirname, 'index.ts'))};
      import { createProcessRuntime } from ${JSON.stringify(join(import.meta.dirname, '..', 'process', 'process-runtime.ts'))};
      const rt = createCriuRuntime({ inner: createProcessRuntime({ poolSize: 0 }), dir: ${JSON.stringify(dir)} });
      const i = await rt.start(${JSON.stringify(spec('k'))});
      console.log(JSON.stringify({ mode: i.startMode, pid: i.pid }));
      setInterval(() => {}, 1000);`;
    // Its temp dirs (which a SIGKILL leaves behind) go under this test's dir, removed after.
    const childTmp = join(dir, 'child-tmp');
    mkdirSync(childTmp, { mode: 0o755 });
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TMPDIR: childTmp },
    });
    let pid: number | undefined;
    try {
      const line = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(String(d))));
      const started = JSON.parse(line) as { mode: string; pid: number };
      pid = started.pid;
      assert.equal(started.mode, 'criu');
      const [helper] = slirpsOf(pid);
      assert.ok(helper, 'the restored instance has its slirp4netns');
      child.kill('SIGKILL');
      for (let i = 0; i < 100 && slirpsOf(pid).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(slirpsOf(pid), [], 'slirp4netns ended with the node process');
    } finally {
      // Also when an assertion failed before the kill: a child left running would hold this file open.
      child.kill('SIGKILL');
      // The restored instance itself is left to the next runtime's cgroup sweep; end it here.
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {}
    }
  });

  it('without slirp4netns, egress apps start normally and the status says why', async (t) => {
    const without = createCriuRuntime({ inner: createProcessRuntime({ poolSize: 0 }), dir, slirpPath: false });
    try {
      const status = (await without.status({ kind: 'app', network: 'egress', checkpoint: KEY }))!;
      assert.equal(status.restores, false);
      assert.equal(status.state, 'unsupported');
      assert.equal(status.reason, support.available ? NO_SLIRP_REASON : `CRIU is not available: ${support.reason}`);
      if (!support.available) return t.skip(`criu not available: ${support.reason}`);
      const plain = await without.start(spec('p'));
      assert.notEqual(plain.startMode, 'criu');
      assert.equal((await json(plain, '/x')).path, '/x');
      await without.stop('p');
    } finally {
      await without.close();
    }
  });

  it('when slirp4netns fails, the restored tree is ended and the instance starts normally, saying why', async (t) => {
    if (!support.available) return t.skip(`criu not available: ${support.reason}`);
    if (!existsSync(join(dir, KEY))) return t.skip('no image was made (the restore test did not get that far)');
    const fake = join(dir, 'fake-slirp4netns');
    writeFileSync(fake, '#!/bin/sh\necho "cannot attach here" >&2\nexit 1\n', { mode: 0o755 });
    const broken = createCriuRuntime({ inner: createProcessRuntime({ poolSize: 0 }), dir, slirpPath: fake });
    const lines: string[] = [];
    broken.subscribe((e) => e.type === 'log' && e.stream === 'system' && lines.push(e.line));
    try {
      const instance = await broken.start(spec('f1'));
      assert.notEqual(instance.startMode, 'criu');
      assert.equal((await json(instance, '/after')).path, '/after');
      assert.match(
        lines.join('\n'),
        /CRIU restore failed, starting normally: slirp4netns did not attach the network \(exit 1\): cannot attach here/,
      );
      // Nothing of the restored tree is left: no process in a criu-N-f1 cgroup.
      const left = readdirSync('/proc').filter((p) => {
        try {
          return /\/criu-\d+-f1$/m.test(readFileSync(`/proc/${p}/cgroup`, 'utf8'));
        } catch {
          return false;
        }
      });
      assert.deepEqual(left, []);
      await broken.stop('f1');
    } finally {
      await broken.close();
    }
  });
});
