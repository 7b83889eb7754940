import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bwrapArgs } from './bwrap.js';
import { createSandbox } from './sandbox.js';
import { etcMount, type SystemMount } from './system-paths.js';

describe('etcMount: what an /etc entry becomes inside', () => {
  let dir: string;
  let dirs: SystemMount[];
  before(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'nimbus-etc-')));
    for (const d of ['usr/share/zoneinfo', 'etc/static', 'run/systemd/resolve'])
      mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'usr/share/zoneinfo/UTC'), 'TZif');
    writeFileSync(join(dir, 'usr/hosts'), '127.0.0.1 localhost\n');
    writeFileSync(join(dir, 'run/systemd/resolve/stub-resolv.conf'), 'nameserver 127.0.0.53\n');
    writeFileSync(join(dir, 'etc/nsswitch.conf'), 'hosts: files dns\n');
    symlinkSync('../usr/share/zoneinfo/UTC', join(dir, 'etc/localtime'));
    symlinkSync('../run/systemd/resolve/stub-resolv.conf', join(dir, 'etc/resolv.conf'));
    symlinkSync('static/hosts', join(dir, 'etc/hosts'));
    symlinkSync(join(dir, 'usr/hosts'), join(dir, 'etc/static/hosts'));
    symlinkSync('../run/nothing-here', join(dir, 'etc/gai.conf'));
    // The sandbox binds the temp dir's /usr, as it binds the host's.
    dirs = [{ kind: 'ro-bind', path: join(dir, 'usr') }];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const at = (name: string) => join(dir, 'etc', name);

  it('binds a regular file at its own path', () => {
    assert.deepEqual(etcMount(at('nsswitch.conf'), at('nsswitch.conf'), dirs), {
      kind: 'ro-bind',
      path: at('nsswitch.conf'),
    });
  });

  it('keeps a symlink whose whole chain is in the bound system dirs (the zone name stays readable)', () => {
    assert.deepEqual(etcMount(at('localtime'), at('localtime'), dirs), {
      kind: 'symlink',
      path: at('localtime'),
      target: '../usr/share/zoneinfo/UTC',
    });
  });

  it('binds the resolved target of a symlink into an unmounted path (systemd-resolved, NixOS)', () => {
    assert.deepEqual(etcMount(at('resolv.conf'), at('resolv.conf'), dirs), {
      kind: 'ro-bind',
      path: at('resolv.conf'),
      source: join(dir, 'run/systemd/resolve/stub-resolv.conf'),
    });
    // Ends in /usr, but through /etc/static, which the sandbox does not show.
    assert.deepEqual(etcMount(at('hosts'), at('hosts'), dirs), {
      kind: 'ro-bind',
      path: at('hosts'),
      source: join(dir, 'usr/hosts'),
    });
  });

  it('takes an entry from another host path, following it; leaves out what is missing', () => {
    assert.deepEqual(etcMount('/etc/resolv.conf', at('resolv.conf'), dirs), {
      kind: 'ro-bind',
      path: '/etc/resolv.conf',
      source: join(dir, 'run/systemd/resolve/stub-resolv.conf'),
    });
    assert.deepEqual(etcMount('/etc/resolv.conf', at('nsswitch.conf'), dirs), {
      kind: 'ro-bind',
      path: '/etc/resolv.conf',
      source: at('nsswitch.conf'),
    });
    assert.equal(etcMount('/etc/hosts', at('missing'), dirs), undefined);
    assert.equal(etcMount('/etc/gai.conf', at('gai.conf'), dirs), undefined, 'a dangling replacement is left out');
    assert.deepEqual(etcMount(at('gai.conf'), at('gai.conf'), dirs), {
      kind: 'symlink',
      path: at('gai.conf'),
      target: '../run/nothing-here',
    });
  });

  it('bwrap binds the source at the path inside', () => {
    const args = bwrapArgs({
      argv: ['/bin/true'],
      cwd: '/',
      network: 'none',
      tmpSizeBytes: 1 << 20,
      system: [{ kind: 'ro-bind', path: '/etc/resolv.conf', source: '/run/systemd/resolve/stub-resolv.conf' }],
      files: [],
      binds: [],
    });
    const i = args.indexOf('/etc/resolv.conf');
    assert.deepEqual(args.slice(i - 2, i + 1), [
      '--ro-bind',
      '/run/systemd/resolve/stub-resolv.conf',
      '/etc/resolv.conf',
    ]);
  });
});

describe('a symlinked /etc/resolv.conf inside a real sandbox', () => {
  it("shows the symlink target's content at /etc/resolv.conf, read-only", () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-resolv-'));
    const sandbox = (() => {
      mkdirSync(join(dir, 'run/systemd/resolve'), { recursive: true });
      mkdirSync(join(dir, 'code'));
      mkdirSync(join(dir, 'sock'), { mode: 0o777 });
      writeFileSync(join(dir, 'run/systemd/resolve/stub-resolv.conf'), 'nameserver 127.0.0.53\nsearch nimbus.test\n');
      symlinkSync('run/systemd/resolve/stub-resolv.conf', join(dir, 'resolv.conf'));
      return createSandbox({ resolvConf: join(dir, 'resolv.conf') });
    })();
    try {
      assert.equal(sandbox.isolated, true, sandbox.warnings.join('; '));
      const launch = sandbox.launch({
        name: `resolv-${process.pid}`,
        memoryMb: 64,
        artifactDir: join(dir, 'code'),
        guestDir: join(dir, 'code'),
        runDir: join(dir, 'sock'),
        nodePath: process.execPath,
        hostPath: '/usr/bin:/bin',
      });
      try {
        const script =
          'cat /etc/resolv.conf; [ -L /etc/resolv.conf ] && echo link; echo x >> /etc/resolv.conf || echo ro';
        const { command, args } = launch.wrap(['/bin/sh', '-c', script]);
        const r = spawnSync(command, args, {
          encoding: 'utf8',
          env: { PATH: '/usr/bin:/bin' },
          stdio: ['ignore', 'pipe', 'pipe', 'ignore', ...launch.fds],
          timeout: 10_000,
        });
        assert.equal(r.stdout, 'nameserver 127.0.0.53\nsearch nimbus.test\nro\n', r.stderr);
      } finally {
        for (const fd of launch.fds) closeSync(fd);
        void launch.cgroup?.remove();
      }
    } finally {
      sandbox.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
