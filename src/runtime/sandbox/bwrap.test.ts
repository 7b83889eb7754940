import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { bwrapArgs, JOIN_FAILED_CODE, JOIN_SCRIPT, launchCommand } from './bwrap.js';
import { isSystemPath, SANDBOX_PATH, systemMounts } from './system-paths.js';

const base = {
  argv: ['/usr/bin/node', '/nimbus/guest/function.mjs'],
  cwd: '/nimbus/code',
  network: 'egress' as const,
  tmpSizeBytes: 64 * 1024 * 1024,
  system: [
    { kind: 'ro-bind' as const, path: '/usr' },
    { kind: 'symlink' as const, path: '/lib', target: 'usr/lib' },
  ],
  files: [{ source: '/tmp/etc/passwd', dest: '/etc/passwd' }],
  binds: [
    { fd: 4, dest: '/nimbus/code' },
    { fd: 6, dest: '/nimbus/run', writable: true },
  ],
};

/** The value after each occurrence of `flag`. */
const after = (args: string[], flag: string, n = 1) =>
  args.flatMap((a, i) => (a === flag ? [args.slice(i + 1, i + 1 + n).join(' ')] : []));

describe('bwrapArgs', () => {
  it('as a user: unshares user, pid, ipc, uts and cgroup namespaces, with no nested user namespaces', () => {
    const args = bwrapArgs(base);
    for (const flag of ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try'])
      assert.ok(args.includes(flag), flag);
    assert.ok(args.includes('--disable-userns'));
    assert.ok(args.includes('--die-with-parent'));
    assert.ok(!args.includes('--unshare-net'), 'egress shares the host network');
  });

  it('as root: sets up privileged, then drops to nobody inside with no capabilities and no_new_privs', () => {
    const args = bwrapArgs({ ...base, dropTo: { uid: 65534, gid: 65534, setprivPath: '/usr/bin/setpriv' } });
    assert.ok(!args.includes('--unshare-user'));
    assert.ok(args.includes('--unshare-pid'));
    assert.deepEqual(after(args, '--cap-add'), ['CAP_SETUID', 'CAP_SETGID']);
    const argv = args.slice(args.indexOf('--') + 1);
    assert.deepEqual(argv, [
      '/usr/bin/setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--no-new-privs',
      '--inh-caps=-all',
      '--bounding-set=-all',
      ...base.argv,
    ]);
  });

  it('gives network: none its own empty network namespace', () => {
    assert.ok(bwrapArgs({ ...base, network: 'none' }).includes('--unshare-net'));
  });

  it('binds the system read-only, keeps symlinks, and mounts its own /proc, /dev and a sized /tmp', () => {
    const args = bwrapArgs(base);
    assert.deepEqual(after(args, '--ro-bind', 2), ['/usr /usr', '/tmp/etc/passwd /etc/passwd']);
    assert.deepEqual(after(args, '--symlink', 2), ['usr/lib /lib']);
    assert.deepEqual(after(args, '--proc'), ['/proc']);
    assert.deepEqual(after(args, '--dev'), ['/dev']);
    assert.deepEqual(after(args, '--size', 3), [`${64 * 1024 * 1024} --tmpfs /tmp`], '--size must precede --tmpfs');
    assert.ok(after(args, '--perms', 3).includes(`1777 --size ${64 * 1024 * 1024}`), 'a /tmp everyone may write');
    assert.ok(!args.includes('--bind'), 'nothing of the host is bound writable by path');
  });

  it('binds code read-only and only the socket dir writable, by descriptor', () => {
    const args = bwrapArgs(base);
    assert.deepEqual(after(args, '--ro-bind-fd', 2), ['4 /nimbus/code']);
    assert.deepEqual(after(args, '--bind-fd', 2), ['6 /nimbus/run']);
  });

  it('remounts the root read-only after every mount, then runs argv in cwd', () => {
    const args = bwrapArgs(base);
    const sep = args.indexOf('--');
    assert.deepEqual(args.slice(sep - 4), ['--remount-ro', '/', '--chdir', '/nimbus/code', '--', ...base.argv]);
    assert.ok(args.lastIndexOf('--bind-fd') < args.indexOf('--remount-ro'));
  });
});

describe('launchCommand', () => {
  it('joins the cgroups before bwrap runs', () => {
    const { command, args } = launchCommand({
      bwrapPath: '/usr/bin/bwrap',
      bwrapArgs: ['--x'],
      procsFiles: ['/cg/memory/a/cgroup.procs', '/cg/pids/a/cgroup.procs'],
    });
    assert.equal(command, '/bin/sh');
    assert.deepEqual(args.slice(2), [
      'nimbus-instance',
      '/cg/memory/a/cgroup.procs',
      '/cg/pids/a/cgroup.procs',
      '--',
      '/usr/bin/bwrap',
      '--x',
    ]);
  });

  it('writes its pid to each file, ignores SIGTERM, and execs the command', () => {
    const out = `${process.env.TMPDIR ?? '/tmp'}/nimbus-join-${process.pid}`;
    const r = spawnSync(
      '/bin/sh',
      ['-c', JOIN_SCRIPT, 'x', out, '--', '/bin/sh', '-c', 'grep SigIgn /proc/$$/status; echo $$; cat "$0"', out],
      {
        encoding: 'utf8',
      },
    );
    const [ignored, pid, written] = r.stdout.trim().split('\n');
    // SigIgn is a hex mask; SIGTERM (15) is bit 14.
    assert.ok(BigInt(`0x${ignored!.split(/\s+/)[1]}`) & (1n << 14n), `SIGTERM ignored: ${ignored}`);
    assert.equal(pid, written, 'the exec keeps the pid that joined');
  });

  it('exits with JOIN_FAILED_CODE when a cgroup cannot be joined', () => {
    const r = spawnSync('/bin/sh', ['-c', JOIN_SCRIPT, 'x', '/nonexistent/cgroup.procs', '--', '/bin/true']);
    assert.equal(r.status, JOIN_FAILED_CODE);
  });
});

describe('system paths', () => {
  it('binds /usr, keeps merged-usr links as links, and never binds /etc/shadow, /root or /home', () => {
    const mounts = systemMounts();
    assert.ok(mounts.some((m) => m.kind === 'ro-bind' && m.path === '/usr'));
    const paths = mounts.map((m) => m.path);
    for (const secret of ['/etc/shadow', '/etc/gshadow', '/etc/passwd', '/root', '/home', '/etc', '/var', '/proc'])
      assert.ok(!paths.includes(secret), secret);
    assert.ok(isSystemPath('/usr/bin/node', mounts));
    assert.ok(!isSystemPath('/usrx/bin/node', mounts));
    assert.equal(
      SANDBOX_PATH.split(':').every((d) => isSystemPath(d, mounts) || d === '/bin'),
      true,
    );
  });
});
