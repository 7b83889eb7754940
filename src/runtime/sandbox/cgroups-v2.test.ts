// cgroup v2 on a real mount. This machine's v2 hierarchy (/sys/fs/cgroup/unified, beside the v1
// controllers) has no memory, cpu or pids controller, so chooseLayout never picks it and the
// limits cannot be tested here; what v2 has built in — cgroup.procs, the freezer (cgroup.freeze,
// cgroup.events), cpu.stat and cgroup.kill — is exercised through the same InstanceCgroup the
// runtime uses, with the layout given explicitly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import { eventually } from '../../../test/support/nimbus.js';
import { openCgroups, readKey } from './cgroups.js';
import { cgroupDir, parseMountinfo, parseProcCgroup } from './cgroups-detect.js';
import { limitsFor } from './limits.js';

function ownV2Dir(): string | undefined {
  const v2 = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.version === 2);
  const own = parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8')).get('');
  return v2 && own !== undefined ? cgroupDir(v2, own) : undefined;
}

describe('cgroup v2 (built-in files, on the real mount)', () => {
  const dir = ownV2Dir();

  it('joins, counts CPU, freezes, thaws and kills through cgroup v2', {
    skip: !dir && 'no cgroup v2 mount here',
  }, async () => {
    const host = openCgroups({ layout: { version: 2, dir: dir! } });
    assert.ok('version' in host, 'reason' in host ? host.reason : '');
    assert.equal(host.version, 2);
    const cg = host.create('v2-test', limitsFor(64, 0.5));
    const [procs] = cg.procsFiles;
    const cgDir = dirname(procs!);
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      writeFileSync(procs!, String(child.pid));
      assert.deepEqual(readFileSync(procs!, 'utf8').trim().split('\n'), [String(child.pid)]);

      await eventually(() => cg.stats().cpuMs > 20, 30_000, 'CPU time counted in cpu.stat');
      await cg.freeze();
      assert.equal(readKey(readFileSync(`${cgDir}/cgroup.events`, 'utf8'), 'frozen'), 1);
      // Frozen: the busy loop gets no CPU at all, however long we look.
      const frozenAt = cg.stats().cpuMs;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(cg.stats().cpuMs, frozenAt);
      await cg.thaw();
      await eventually(() => cg.stats().cpuMs > frozenAt, 30_000, 'running again after thaw');

      const exited = once(child, 'exit');
      await cg.remove(); // cgroup.kill, then rmdir
      const [, signal] = await exited;
      assert.equal(signal, 'SIGKILL');
      assert.equal(existsSync(cgDir), false);
    } finally {
      child.kill('SIGKILL');
      host.close();
    }
    assert.equal(existsSync(dirname(cgDir)), false, 'the runtime parent is removed on close');
  });
});
