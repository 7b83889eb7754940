import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { openCgroups } from './cgroups.js';

// A Nimbus killed with -9 leaves its instances' cgroups behind, some of them frozen; a frozen
// process ignores SIGKILL, so the next Nimbus must thaw before it kills.
const ORPHAN = `
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { openCgroups } from './src/runtime/sandbox/cgroups.ts';
import { limitsFor } from './src/runtime/sandbox/limits.ts';
const host = openCgroups();
const cg = host.create('orphan', limitsFor(64, 0.5));
const child = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
await new Promise((r) => child.once('spawn', r));
for (const file of cg.procsFiles) writeFileSync(file, String(child.pid));
await cg.freeze();
process.stdout.write(String(child.pid) + '\\n');
setInterval(() => {}, 1000);
`;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('cgroups left by a killed runtime', () => {
  const probe = openCgroups();
  const usable = 'version' in probe && probe.version === 1;
  if ('version' in probe) probe.close();

  it('are thawed and their processes killed by the next runtime', {
    skip: !usable && 'cgroup v1 not writable here',
  }, async () => {
    const orphanHost = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ORPHAN], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(orphanHost, 'exit');
    let pid: number;
    try {
      const [chunk] = (await once(orphanHost.stdout!, 'data')) as [Buffer];
      pid = Number(chunk.toString().trim());
      assert.ok(pid > 0 && alive(pid));
    } finally {
      // Also when the assertion failed: a host left running would hold this file open.
      orphanHost.kill('SIGKILL');
      await exited;
    }
    process.kill(pid, 'SIGKILL'); // frozen: the signal stays pending
    assert.ok(alive(pid), 'a frozen process survives SIGKILL');

    const next = openCgroups();
    try {
      for (let i = 0; i < 400 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(alive(pid), false, 'the sweep thawed and killed the orphan');
    } finally {
      if ('version' in next) next.close();
    }
  });
});
