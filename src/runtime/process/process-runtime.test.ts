import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasCode } from '../../core/errors.js';
import { packageRoot } from '../../core/package-root.js';
import { runRuntimeConformance } from '../conformance.js';
import type { InstanceSpec } from '../types.js';
import { createProcessRuntime } from './process-runtime.js';

runRuntimeConformance('process', () => createProcessRuntime());

const fixtures = join(packageRoot(), 'test', 'fixtures');
const spec = (id: string, extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
  id,
  function: 'fn',
  revision: 'r1',
  kind: 'node',
  artifactDir: join(fixtures, 'functions'),
  entry: 'echo.mjs',
  env: {},
  memoryMb: 128,
  timeoutMs: 1000,
  ...extra,
});

describe('process runtime', () => {
  it('reports the output of a runtime that dies at once in START_FAILED', async () => {
    const runtime = createProcessRuntime({ nodePath: join(fixtures, 'bin', 'exit-early.sh') });
    after(() => runtime.close());
    await assert.rejects(runtime.start(spec('early')), (err: Error) => {
      assert.ok(hasCode(err, 'NIMBUS_ERR_START_FAILED'));
      assert.match(err.message, /exited with code 7 before it was ready\nfake node: cannot load libnode.so/);
      return true;
    });
    assert.deepEqual(runtime.list(), []);
  });

  it('fails a start that never signals readiness after startTimeoutMs, killing the process', async () => {
    const runtime = createProcessRuntime({ nodePath: join(fixtures, 'bin', 'never-ready.sh') });
    after(() => runtime.close());
    const states: string[] = [];
    runtime.subscribe((e) => e.type === 'state' && states.push(e.state));
    await assert.rejects(runtime.start(spec('slow', { startTimeoutMs: 300 })), /not ready within 300 ms/);
    assert.deepEqual(states, ['starting', 'failed']);
  });

  it('stops a start when its signal aborts', async () => {
    const runtime = createProcessRuntime({ nodePath: join(fixtures, 'bin', 'never-ready.sh') });
    after(() => runtime.close());
    const controller = new AbortController();
    const starting = runtime.start(spec('aborted'), { signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await assert.rejects(starting, (err) => hasCode(err, 'NIMBUS_ERR_START_FAILED'));
    assert.deepEqual(runtime.list(), []);
  });

  it('rejects a start that is stopped before it is ready, and reports stopped', async () => {
    const runtime = createProcessRuntime({ nodePath: join(fixtures, 'bin', 'never-ready.sh') });
    after(() => runtime.close());
    const states: string[] = [];
    runtime.subscribe((e) => e.type === 'state' && states.push(e.state));
    const starting = runtime.start(spec('stopped-early'));
    await runtime.stop('stopped-early', { graceMs: 100 });
    await assert.rejects(starting, /stopped while starting/);
    assert.deepEqual(states, ['starting', 'stopped']);
  });

  it('errors the response body with INSTANCE_CRASHED when the instance dies mid-answer', async () => {
    const runtime = createProcessRuntime();
    after(() => runtime.close());
    const inst = await runtime.start(spec('mid-stream'));
    const res = await inst.fetch(new Request('http://x/stream-forever'));
    const reader = res.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), 'first');
    process.kill(inst.pid!, 'SIGKILL');
    await assert.rejects(reader.read(), (err) => hasCode(err, 'NIMBUS_ERR_INSTANCE_CRASHED'));
  });

  it('reports a heap hog as out of memory: a clean V8 error below its memory size, OUT_OF_MEMORY to the caller', async () => {
    const runtime = createProcessRuntime();
    after(() => runtime.close());
    const inst = await runtime.start(spec('hog', { memoryMb: 64 }));
    const oom = new Promise<string>((resolve) =>
      runtime.subscribe((e) => e.type === 'log' && /heap out of memory/.test(e.line) && resolve(e.line)),
    );
    const failed = new Promise((resolve) =>
      runtime.subscribe((e) => e.type === 'state' && e.state === 'failed' && resolve(e.exit)),
    );
    await assert.rejects(inst.fetch(new Request('http://x/hog')), (err) => hasCode(err, 'NIMBUS_ERR_OUT_OF_MEMORY'));
    assert.match(await oom, /Reached heap limit|heap out of memory/);
    const exit = (await failed) as { expected: boolean; reason: string };
    assert.equal(exit.expected, false);
    assert.match(exit.reason, /^ran out of memory: /);
  });

  it('never passes the host environment to instances', async () => {
    process.env.NIMBUS_TEST_SECRET = 'leak';
    const runtime = createProcessRuntime();
    after(() => runtime.close());
    const inst = await runtime.start(
      spec('env', { kind: 'app', entry: undefined, command: ['node', '-e', ENV_APP], env: { MINE: '1' } }),
    );
    const env = (await (await inst.fetch(new Request('http://x/'))).json()) as Record<string, string>;
    delete process.env.NIMBUS_TEST_SECRET;
    assert.equal(env.NIMBUS_TEST_SECRET, undefined);
    assert.equal(env.NODE_EXTRA_CA_CERTS, undefined);
    assert.deepEqual([env.MINE, env.HOME, typeof env.PATH, env.NIMBUS_FUNCTION], ['1', '/tmp', 'string', 'fn']);
  });
});

// An app that answers with its own environment.
const ENV_APP = "require('http').createServer((q, s) => s.end(JSON.stringify(process.env))).listen(process.env.PORT)";

describe('process runtime sandbox', () => {
  it('runs unsandboxed with a warning when the sandbox is off, and says so', async () => {
    const runtime = createProcessRuntime({ sandbox: { mode: 'off' } });
    after(() => runtime.close());
    assert.equal(runtime.sandboxed, false);
    assert.match(runtime.warnings.join(), /NOT isolated/);
    const inst = await runtime.start(spec('plain'));
    assert.equal((await inst.fetch(new Request('http://x/'))).status, 200);
    const stats = runtime.stats('plain')!;
    assert.ok(stats.memoryBytes > 0 && stats.pids > 0, JSON.stringify(stats));
  });

  it('refuses to start anything unsandboxed with requireSandbox, saying what is missing', async () => {
    const runtime = createProcessRuntime({ sandbox: { mode: 'off' }, requireSandbox: true });
    after(() => runtime.close());
    await assert.rejects(runtime.start(spec('refused')), (err: Error) => {
      assert.ok(hasCode(err, 'NIMBUS_ERR_START_FAILED'));
      assert.match(err.message, /sandbox is required \(requireSandbox\) but unavailable here: .*turned off/);
      return true;
    });
    assert.deepEqual(runtime.list(), []);
  });

  it('falls back with a warning when bubblewrap is missing', () => {
    const runtime = createProcessRuntime({ sandbox: { bwrapPath: join(fixtures, 'bin', 'exit-early.sh') } });
    after(() => runtime.close());
    assert.equal(runtime.sandboxed, false);
    assert.match(runtime.warnings.join(), /NOT isolated: bubblewrap cannot create a sandbox here/);
  });

  it('reads stats from the cgroup and freezes and thaws an instance', async (t) => {
    const runtime = createProcessRuntime();
    after(() => runtime.close());
    if (!runtime.sandboxed) return t.skip(runtime.warnings.join('; '));
    const inst = await runtime.start(spec('frozen'));
    const stats = runtime.stats('frozen')!;
    assert.ok(
      stats.cpuMs > 0 && stats.memoryBytes > 0 && stats.memoryPeakBytes >= stats.memoryBytes,
      JSON.stringify(stats),
    );
    assert.ok(stats.pids >= 7, 'node threads count');
    assert.equal(await runtime.freeze('frozen'), true);
    const answer = inst.fetch(new Request('http://x/'));
    const first = await Promise.race([answer.then(() => 'answered'), new Promise((r) => setTimeout(r, 100, 'held'))]);
    assert.equal(first, 'held', 'a frozen instance runs nothing');
    assert.equal(await runtime.thaw('frozen'), true);
    assert.equal((await answer).status, 200);
    assert.equal(await runtime.freeze('unknown'), false);
  });

  it('stops a frozen instance (thawed first, so it can drain)', async (t) => {
    const runtime = createProcessRuntime();
    after(() => runtime.close());
    if (!runtime.sandboxed) return t.skip(runtime.warnings.join('; '));
    await runtime.start(spec('frozen-stop'));
    await runtime.freeze('frozen-stop');
    await runtime.stop('frozen-stop', { graceMs: 1000 });
    assert.deepEqual(runtime.list(), []);
  });
});
