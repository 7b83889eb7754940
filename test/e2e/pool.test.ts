// Issue 4, warm pools: a function at zero is served through the gateway by a pre-started,
// sandboxed cell specialised to it; two functions never share a cell; a pooled instance is as
// contained as a spawned one (the hostile fixtures that apply: reading paths, eating memory).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createProcessRuntime, type ProcessRuntime } from '../../src/runtime/process/process-runtime.js';
import { eventually, FIXTURES, startTestNode, type TestNode } from '../support/nimbus.js';

describe('warm pool through the gateway', () => {
  let node: TestNode;
  let runtime: ProcessRuntime;
  const deploy = async (dir: string, overrides: Record<string, unknown>) => {
    const { status, body } = await node.deploy(dir, overrides);
    assert.equal(status, 201, JSON.stringify(body));
  };
  /** Waits until `n` cells of the default shape (256 MB, egress) are warm. */
  const poolWarm = (n = 2) =>
    eventually(
      () =>
        runtime.pool().filter((c) => c.state === 'warm' && c.shape.memoryMb === 256 && c.shape.network === 'egress')
          .length >= n,
      60_000,
      `${n} warm cells`,
    );
  const instancesOf = async (name: string) =>
    (await node.json(`/api/v1/functions/${name}/instances`)).instances as {
      id: string;
      pid?: number;
      startMode?: string;
    }[];

  before(async () => {
    runtime = createProcessRuntime({ requireSandbox: true, poolSize: 2 });
    node = await startTestNode({ runtime });
  });
  after(() => node.dispose());

  it('serves a function at zero from a pooled instance, with its own env and code', async () => {
    await deploy(join(FIXTURES, 'pool', 'introspect'), { name: 'one', env: { GREETING: 'one' } });
    await poolWarm();
    const body = await node.json('/fn/one/');
    assert.equal(body.env.GREETING, 'one');
    assert.equal(body.env.NIMBUS_FUNCTION, 'one');
    assert.deepEqual(body.code.sort(), ['index.mjs', 'index.mjs.map']);
    const [instance] = await instancesOf('one');
    assert.equal(instance?.startMode, 'pool');
  });

  it('never lets two functions share a cell', async () => {
    await deploy(join(FIXTURES, 'pool', 'introspect'), { name: 'two', env: { GREETING: 'two' } });
    await deploy(join(FIXTURES, 'pool', 'introspect'), { name: 'three', env: { GREETING: 'three' } });
    await poolWarm();
    const [two, three] = await Promise.all([node.json('/fn/two/'), node.json('/fn/three/')]);
    assert.equal(two.env.GREETING, 'two');
    assert.equal(three.env.GREETING, 'three');
    assert.equal(three.env.NIMBUS_FUNCTION, 'three');
    const [a] = await instancesOf('two');
    const [b] = await instancesOf('three');
    assert.equal(a?.startMode, 'pool');
    assert.equal(b?.startMode, 'pool');
    assert.notEqual(a!.pid, b!.pid);
    assert.ok(
      !runtime.pool().some((c) => c.pid === a!.pid || c.pid === b!.pid),
      'a used cell is never back in the pool',
    );
  });

  it('a pooled instance sees only its own code: not the data dir, artifacts or another function', async () => {
    await deploy(join(FIXTURES, 'hostile', 'read-paths'), { memory: 256 });
    await poolWarm();
    const artifacts = join(node.dataDir, 'artifacts');
    const q = [node.dataDir, artifacts, '/root', '/nimbus/code'].map((p) => `path=${encodeURIComponent(p)}`).join('&');
    const body = await node.json(`/fn/read-paths/?${q}`);
    assert.deepEqual(body[node.dataDir], { error: 'ENOENT' });
    assert.deepEqual(body[artifacts], { error: 'ENOENT' });
    assert.deepEqual(body['/root'], { error: 'ENOENT' });
    assert.deepEqual(body['/nimbus/code'].sort(), ['index.mjs', 'index.mjs.map'], 'only its own code');
    assert.equal((await instancesOf('read-paths'))[0]?.startMode, 'pool');
  });

  it('a pooled instance is held to its memory limit: OUT_OF_MEMORY, and the node stays up', async () => {
    await deploy(join(FIXTURES, 'hostile', 'memory-hog'), { memory: 256 });
    await poolWarm();
    const res = await node.call('/fn/memory-hog/');
    assert.equal(res.status, 502);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'NIMBUS_ERR_OUT_OF_MEMORY');
    assert.match(error.message, /ran out of memory \(256 MB\)/);
    assert.equal(await (await node.call('/fn/memory-hog/ok')).text(), 'ok');
  });
});
