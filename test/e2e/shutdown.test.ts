import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { APPS, eventually, readJson } from '../support/nimbus.js';
import { serveProcess } from '../support/serve-process.js';

describe('nimbus serve as a process', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-shutdown-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('drains in-flight requests on SIGTERM, stops its instances and exits 0', async () => {
    const { child, url, output } = await serveProcess(dataDir);
    const { packDirectory } = await import('../../src/cli/pack.js');
    const { archive } = await packDirectory(`${APPS}/echo`);
    const deployed = await fetch(`${url}/api/v1/functions`, { method: 'POST', body: archive });
    assert.equal(deployed.status, 201);
    const slow = fetch(`${url}/fn/echo/sleep?ms=700`);
    let pid = 0; // the host pid of the instance (inside its sandbox it has a pid of its own)
    await eventually(
      async () => {
        const { instances } = await readJson(await fetch(`${url}/api/v1/functions/echo`));
        pid = instances[0]?.pid;
        return instances.some((i: { inFlight: number }) => i.inFlight === 1);
      },
      5000,
      'the slow request to be in flight',
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const res = await slow;
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^slept /);
    assert.equal(await exited, 0, output());
    assert.throws(() => process.kill(pid, 0), 'the instance process is gone');
  });
});
