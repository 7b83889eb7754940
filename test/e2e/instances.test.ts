import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { APPS, eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('a window into every instance', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
    assert.equal((await node.deploy(`${APPS}/echo`)).status, 201);
  });
  after(() => node.dispose());

  it('shows each live instance with its state, requests, CPU and memory sampled from the kernel', async () => {
    assert.equal((await node.call('/fn/echo/')).status, 200);
    const window = await eventually(
      async () => {
        const w = await node.json('/api/v1/functions/echo/instances');
        return w.instances[0]?.usage && w;
      },
      5000,
      'a resource sample',
    );
    const [instance] = window.instances;
    assert.equal(instance.state, 'ready');
    assert.equal(instance.requests, 1);
    // A cgroup is charged only for pages it touched first (Node's shared binary pages may be
    // charged elsewhere), so expect a few MB, not a full RSS.
    assert.ok(instance.usage.memoryBytes > 2 * 1024 * 1024, `more than 2 MB, got ${instance.usage.memoryBytes}`);
    assert.ok(instance.usage.memoryPeakBytes >= instance.usage.memoryBytes);
    assert.ok(instance.usage.cpuMs > 0);
    assert.ok(instance.usage.pids >= 1);
    assert.ok(Date.parse(instance.stateSince) >= Date.parse(instance.startedAt));
    assert.equal(typeof window.sandbox.sandboxed, 'boolean');
    if (!window.sandbox.sandboxed) assert.ok(window.sandbox.warnings.length > 0, 'an unsandboxed node says why');
  });

  it('remembers why an instance ended', async () => {
    const { instances } = await node.json('/api/v1/functions/echo/instances');
    assert.equal((await node.call('/fn/echo/exit')).status, 502);
    const crashed = await eventually(
      async () => {
        const w = await node.json('/api/v1/functions/echo/instances');
        return w.recent.find((r: any) => r.id === instances[0].id);
      },
      5000,
      'the crashed instance in the recent list',
    );
    assert.equal(crashed.state, 'crashed');
    assert.match(crashed.reason, /code 3/);
  });

  it('shows a crash-looping function with its start error instead of spinning', async () => {
    const dir = writeSource({
      'index.js': "throw new Error('no config at init');\nexport default { fetch: () => new Response('x') };\n",
    });
    assert.equal((await node.deploy(dir, { name: 'loop' })).status, 201);
    const res = await node.call('/fn/loop/');
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('x-nimbus-error'), 'NIMBUS_ERR_START_FAILED');
    const fast = await node.call('/fn/loop/');
    assert.equal(fast.status, 502, 'while backing off, callers fail fast with the start error');
    const w = await node.json('/api/v1/functions/loop/instances');
    assert.match(w.startError, /no config at init/);
    assert.equal(w.recent[0].state, 'crashed');
    assert.match(w.recent[0].reason, /failed to start/);
  });

  it('prints the window as a table with `nimbus instances`', async () => {
    await node.call('/fn/echo/');
    await eventually(
      async () => (await node.json('/api/v1/functions/echo/instances')).instances[0]?.usage,
      5000,
      'a sample',
    );
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/nimbus.js', 'instances', 'echo'], {
      cwd: ROOT,
      env: { ...process.env, NIMBUS_URL: node.url },
    });
    assert.match(stdout, /^ID\s+REV\s+STATE\s+SINCE\s+IN FLIGHT\s+REQUESTS\s+CPU\s+MEMORY\s+PEAK\s+PIDS/m);
    assert.match(stdout, /echo-r1_\w+\s+r1\s+ready/);
    assert.match(stdout, /\d+(\.\d)? MB/);
    assert.match(stdout, /recently ended:/);
  });

  it('freezes an idle instance with the cgroup freezer and thaws it for the next request', async (t) => {
    const frozenNode = await startTestNode({ freezeAfterMs: 300 });
    t.after(() => frozenNode.dispose());
    if (!frozenNode.sandbox?.sandboxed) {
      t.skip('no cgroup freezer on this machine: instances run unsandboxed');
      return;
    }
    assert.equal((await frozenNode.deploy(`${APPS}/echo`)).status, 201);
    const id = await (await frozenNode.call('/fn/echo/id')).text();
    await eventually(
      async () => (await frozenNode.json('/api/v1/functions/echo/instances')).instances[0]?.state === 'frozen',
      5000,
      'frozen',
    );
    // A frozen instance is still a warm one: the function's summary (nimbus ls, the dashboard) counts it ready.
    const listed = (await frozenNode.json('/api/v1/functions')).functions.find((f: any) => f.name === 'echo');
    assert.equal(listed.instances.ready, 1, JSON.stringify(listed.instances));
    const again = await frozenNode.call('/fn/echo/id');
    assert.equal(again.status, 200);
    assert.equal(await again.text(), id, 'the same instance answered: thawed, not restarted');
  });
});
