import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { dumpArgs, dumpableLaunch } from './checkpoint.js';
import { detectCriu } from './detect.js';
import { restoreArgs } from './restore.js';

describe('detectCriu', () => {
  it('says plainly when criu is missing or its check fails', async () => {
    if (process.geteuid?.() !== 0) return;
    assert.match(
      (await detectCriu({ pathEnv: '/nonexistent', criuPath: '/nonexistent/criu' })).reason ?? '',
      /criu check fails|not installed/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-fake-criu-'));
    try {
      const fake = join(dir, 'criu');
      writeFileSync(
        fake,
        '#!/bin/sh\n[ "$1" = --version ] && echo "Version: 9.9" && exit 0\necho "Error: kernel too old" >&2; exit 1\n',
      );
      chmodSync(fake, 0o755);
      const found = await detectCriu({ criuPath: fake });
      assert.equal(found.available, false);
      assert.equal(found.version, '9.9');
      assert.equal(found.reason, 'criu check fails: Error: kernel too old');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('dumps a test process: a criu whose check passes but whose dumps hang or fail is not used', async () => {
    if (process.geteuid?.() !== 0) return;
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-fake-criu-'));
    // `criu check` passes and `dump` does what CRIU 4.1 does on Linux 6.18 (hangs), or fails.
    const fake = (name: string, dump: string) => {
      const file = join(dir, name);
      writeFileSync(
        file,
        `#!/bin/sh\n[ "$1" = --version ] && echo "Version: 4.1.1" && exit 0\n[ "$1" = check ] && exit 0\n${dump}\n`,
      );
      chmodSync(file, 0o755);
      return file;
    };
    try {
      // The event loop runs on while the probe waits out its limit (it used to stop for all of it).
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 50);
      const hung = await detectCriu({
        criuPath: fake('hangs', 'exec sleep 30'),
        probeTimeoutMs: 500,
        probeCache: false,
      });
      clearInterval(ticker);
      assert.ok(ticks >= 3, `${ticks} timer ticks during a 500 ms probe`);
      assert.equal(hung.available, false);
      assert.match(
        hung.reason ?? '',
        /^criu dump of a test process did not finish within 0\.5 s on Linux .*: CRIU hangs/,
      );
      const failed = await detectCriu({
        criuPath: fake('fails', 'echo "Error (criu/cr-dump.c:1): Dumping FAILED." >&2; exit 1'),
        probeCache: false,
      });
      assert.equal(failed.reason, 'criu dump of a test process fails: Error (criu/cr-dump.c:1): Dumping FAILED.');
      // The probe's dump gets a live process of its own session (what a real dump needs).
      const seen = join(dir, 'seen');
      const ok = await detectCriu({
        criuPath: fake('works', `ps -o sid= -o pid= -p "$3" > ${seen}; kill -9 "$3"; exit 0`),
        probeCache: false,
      });
      assert.equal(ok.available, true, ok.reason);
      const [sid, pid] = readFileSync(seen, 'utf8').trim().split(/\s+/);
      assert.equal(sid, pid, 'the test process leads its own session');
      // The verdict is kept for the boot and this binary: a second process does not wait again.
      const count = join(dir, 'dumps');
      const counting = fake('counting', `echo x >> ${count}; exec sleep 30`);
      const cache = join(dir, 'run', 'criu-probe.json');
      const first = await detectCriu({ criuPath: counting, probeTimeoutMs: 500, probeCache: cache });
      const second = await detectCriu({ criuPath: counting, probeTimeoutMs: 500, probeCache: cache });
      assert.equal(second.reason, first.reason);
      assert.equal(readFileSync(count, 'utf8'), 'x\n', 'one probe dump');
      writeFileSync(counting, `${readFileSync(counting, 'utf8')}\n# another build\n`);
      await detectCriu({ criuPath: counting, probeTimeoutMs: 500, probeCache: cache });
      assert.equal(readFileSync(count, 'utf8'), 'x\nx\n', 'a changed binary is probed again');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('checkpoint and restore command lines', () => {
  it('makes the sandbox dumpable: bwrap as pid 1 in its own session, output through pipes', () => {
    const wrapped = {
      command: '/bin/sh',
      args: ['-c', 'JOIN', 'nimbus-instance', '/cg/procs', '--', '/usr/bin/bwrap', '--unshare-pid', '--', 'node'],
    };
    const { command, args } = dumpableLaunch(wrapped);
    assert.equal(command, '/bin/sh');
    assert.deepEqual(args.slice(3), [
      '/bin/sh',
      '-c',
      'JOIN',
      'nimbus-instance',
      '/cg/procs',
      '--',
      '/usr/bin/bwrap',
      '--as-pid-1',
      '--new-session',
      '--unshare-pid',
      '--',
      'node',
    ]);
    assert.throws(() => dumpableLaunch({ command: 'node', args: ['x'] }), /not the expected/);
  });

  it('names the per-instance mounts on dump and maps them on restore', () => {
    const dump = dumpArgs(42, '/img');
    assert.deepEqual(dump.slice(0, 5), ['dump', '-t', '42', '-D', '/img']);
    for (const m of [
      'mnt[]',
      'mnt[/nimbus/run]:run',
      'mnt[/etc/passwd]:passwd',
      'mnt[/etc/group]:group',
      'mnt[/etc/resolv.conf]:resolv',
    ])
      assert.ok(dump.includes(m), m);
    const restore = restoreArgs({
      image: '/data/criu/abc',
      meta: { pipes: ['pipe:[1]', 'pipe:[2]'], createdAt: '', dumpMs: 1, bytes: 1, platform: 'p' },
      workDir: '/w',
      runDir: '/w/run',
      etcDir: '/etc-dir',
      resolvConf: '/w/resolv.conf',
    });
    for (const a of [
      'fd[1]:pipe:[1]',
      'fd[2]:pipe:[2]',
      'mnt[run]:/w/run',
      'mnt[passwd]:/etc-dir/passwd',
      'mnt[resolv]:/w/resolv.conf',
      '/data/criu/abc/root',
      '-d',
    ])
      assert.ok(restore.includes(a), a);
    assert.ok(!restore.includes('--empty-ns'), 'the network namespace is replayed without the loopback script');
    const quick = restoreArgs({
      image: '/i',
      meta: { pipes: ['pipe:[1]', 'pipe:[2]'], createdAt: '', dumpMs: 1, bytes: 1, platform: 'p' },
      workDir: '/w',
      runDir: '/w/run',
      etcDir: '/e',
      resolvConf: '/w/resolv.conf',
      loopbackScript: '/s/loopback.sh',
    });
    assert.deepEqual(quick.slice(quick.indexOf('--empty-ns'), quick.indexOf('--empty-ns') + 4), [
      '--empty-ns',
      'net',
      '--action-script',
      '/s/loopback.sh',
    ]);
  });
});
