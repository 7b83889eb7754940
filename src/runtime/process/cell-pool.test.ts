// The warm pool (cell-pool.ts, specialise.ts) through the process runtime: real sandboxed cells,
// real specialisation. A specialised cell must be as isolated as a spawned instance.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCode } from '../../core/errors.js';
import { packageRoot } from '../../core/package-root.js';
import { runRuntimeConformance } from '../conformance.js';
import type { InstanceSpec } from '../types.js';
import { createProcessRuntime, type ProcessRuntime } from './process-runtime.js';
import { linkTree } from './specialise.js';

const fixtures = join(packageRoot(), 'test', 'fixtures');
const introspect = join(fixtures, 'pool', 'introspect');

runRuntimeConformance('process, warm pool', () => createProcessRuntime({ poolSize: 2, poolMemoryMb: [128] }));

let ids = 0;
const spec = (extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
  id: `pool-${++ids}`,
  function: 'introspect',
  revision: 'r1',
  kind: 'node',
  artifactDir: introspect,
  entry: 'index.mjs',
  env: { SECRET: 'only-mine' },
  memoryMb: 128,
  timeoutMs: 1000,
  ...extra,
});

async function eventually<T>(check: () => T | undefined | false, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const warmPids = (runtime: ProcessRuntime) =>
  runtime
    .pool()
    .filter((c) => c.state === 'warm')
    .map((c) => c.pid);
const poolFull = (runtime: ProcessRuntime, n: number): Promise<(number | undefined)[]> =>
  eventually(() => (warmPids(runtime).length >= n ? warmPids(runtime) : undefined), `${n} warm cells`);

/** A cgroup v1 or v2 control file of a process (the file of `v1` under its controller, or `v2`). */
function cgroupFile(pid: number, controller: string, v1: string, v2: string): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const own = lines.find((l) => l.split(':')[1]!.split(',').includes(controller));
  if (own && existsSync(join('/sys/fs/cgroup', controller)))
    return readFileSync(join('/sys/fs/cgroup', controller, own.split(':')[2]!, v1), 'utf8').trim();
  const unified = lines.find((l) => l.startsWith('0::'))!;
  return readFileSync(join('/sys/fs/cgroup', unified.slice(3), v2), 'utf8').trim();
}

async function introspectOf(runtime: ProcessRuntime, s: InstanceSpec, query = '') {
  const instance = await runtime.start(s);
  const res = await instance.fetch(new Request(`http://fn/${query}`));
  assert.equal(res.status, 200);
  return { instance, body: (await res.json()) as Record<string, any> };
}

describe('warm pool', () => {
  let runtime: ProcessRuntime;
  before(() => {
    runtime = createProcessRuntime({ poolSize: 2, poolMemoryMb: [128] });
  });
  after(() => runtime.close());

  it('keeps poolSize cells warm, sandboxed, and specialises one on start', async () => {
    assert.equal(runtime.sandboxed, true, runtime.warnings.join('; '));
    const before = await poolFull(runtime, 2);
    const { instance } = await introspectOf(runtime, spec());
    assert.equal(instance.startMode, 'pool');
    assert.ok(before.includes(instance.pid), 'the instance is one of the warm cells');
  });

  it('gives the function exactly what a spawned instance gets: env, code (read-only), cwd, limits', async () => {
    const plain = createProcessRuntime({ poolSize: 0 });
    after(() => plain.close());
    await poolFull(runtime, 2);
    const pooled = await introspectOf(runtime, spec({ cpu: 0.25 }), '?write=1&path=/nimbus/code&path=/nimbus/run');
    const spawned = await introspectOf(plain, spec({ cpu: 0.25 }), '?write=1&path=/nimbus/code&path=/nimbus/run');
    assert.equal(pooled.instance.startMode, 'pool');
    assert.equal(spawned.instance.startMode, 'spawn');
    const { NIMBUS_INSTANCE: a, ...pooledEnv } = pooled.body.env;
    const { NIMBUS_INSTANCE: b, ...spawnedEnv } = spawned.body.env;
    assert.equal(a, pooled.instance.id);
    assert.equal(b, spawned.instance.id);
    assert.deepEqual(pooledEnv, spawnedEnv, 'the cell environment is replaced whole');
    assert.equal(pooled.body.env.SECRET, 'only-mine');
    for (const key of ['code', 'cwd', 'read', 'writeCode'] as const)
      assert.deepEqual(pooled.body[key], spawned.body[key], key);
    assert.deepEqual(pooled.body.code, ['index.mjs', 'nimbus.yaml']);
    assert.equal(pooled.body.writeCode, 'EROFS');
    const pid = pooled.instance.pid!;
    assert.equal(cgroupFile(pid, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(128 * 1024 * 1024));
    assert.equal(cgroupFile(pid, 'pids', 'pids.max', 'pids.max'), '256');
    // Settled to the function's own quota once ready (a quarter core).
    assert.match(cgroupFile(pid, 'cpu', 'cpu.cfs_quota_us', 'cpu.max'), /^25000\b/);
  });

  it('never gives one cell to two instances, and never returns a cell to the pool', async () => {
    await poolFull(runtime, 2);
    const other = mkdtempSync(join(tmpdir(), 'nimbus-pool-'));
    after(() => rmSync(other, { recursive: true, force: true }));
    writeFileSync(join(other, 'other.mjs'), readFileSync(join(introspect, 'index.mjs')));
    const [one, two] = await Promise.all([
      introspectOf(runtime, spec()),
      introspectOf(runtime, spec({ function: 'other', artifactDir: other, entry: 'other.mjs' })),
    ]);
    assert.equal(one.instance.startMode, 'pool');
    assert.equal(two.instance.startMode, 'pool');
    assert.notEqual(one.instance.pid, two.instance.pid);
    assert.deepEqual(one.body.code, ['index.mjs', 'nimbus.yaml']);
    assert.deepEqual(two.body.code, ['other.mjs']);
    await runtime.stop(one.instance.id);
    const refilled = await poolFull(runtime, 2);
    assert.ok(!refilled.includes(one.instance.pid) && !refilled.includes(two.instance.pid));
    await runtime.stop(two.instance.id);
  });

  it('fails a start whose module throws at init cleanly: the cell is killed, the pool refills', async () => {
    await poolFull(runtime, 2);
    const before = warmPids(runtime);
    const failing = spec({ artifactDir: join(fixtures, 'functions'), entry: 'init-throws.mjs' });
    await assert.rejects(runtime.start(failing), (err: Error) => {
      assert.ok(hasCode(err, 'NIMBUS_ERR_START_FAILED'), String(err));
      assert.match(err.message, /threw at init/);
      return true;
    });
    assert.equal(
      runtime.list().find((i) => i.id === failing.id),
      undefined,
    );
    const used = before.find((pid) => !warmPids(runtime).includes(pid));
    assert.ok(used !== undefined, 'a cell was taken');
    await eventually(() => {
      try {
        process.kill(used!, 0);
        return false;
      } catch {
        return true;
      }
    }, 'the failed cell to be gone');
    await poolFull(runtime, 2);
  });

  it('spawns for what no cell can run (app mode, a new shape), and keeps cells of a shape asked for', async () => {
    const none = spec({ network: 'none', memoryMb: 160 });
    const first = await runtime.start(none);
    assert.equal(first.startMode, 'spawn');
    await eventually(
      () => runtime.pool().some((c) => c.state === 'warm' && c.shape.network === 'none' && c.shape.memoryMb === 160),
      'a warm cell of the new shape',
    );
    const second = await runtime.start({ ...none, id: `pool-${++ids}` });
    assert.equal(second.startMode, 'pool');
    const app = await runtime.start({
      ...spec(),
      kind: 'app',
      entry: undefined,
      artifactDir: join(fixtures, 'functions', 'apps'),
      command: [process.execPath, 'server.mjs'],
    });
    assert.equal(app.startMode, 'spawn');
    await Promise.all([first, second, app].map((i) => runtime.stop(i.id)));
  });
});

describe('warm pool, off or held back', () => {
  it('poolSize 0: no cells at all, every start spawns', async () => {
    const runtime = createProcessRuntime({ poolSize: 0 });
    after(() => runtime.close());
    const instance = await runtime.start(spec());
    assert.equal(instance.startMode, 'spawn');
    assert.deepEqual(runtime.pool(), []);
  });

  it('starts no cell while the host is short of memory, and spawns instead', async () => {
    const runtime = createProcessRuntime({ poolSize: 2, poolMemoryMb: [128], poolTuning: { freeMemory: () => 0 } });
    after(() => runtime.close());
    assert.deepEqual(runtime.pool(), []);
    const instance = await runtime.start(spec());
    assert.equal(instance.startMode, 'spawn');
    assert.deepEqual(runtime.pool(), []);
  });

  it('a runtime whose cells cannot start still fails starts cleanly (no hang)', async () => {
    const runtime = createProcessRuntime({
      poolSize: 1,
      poolMemoryMb: [128],
      nodePath: join(fixtures, 'bin', 'exit-early.sh'),
    });
    after(() => runtime.close());
    await assert.rejects(runtime.start(spec()), /exited with code 7 before it was ready/);
    await eventually(() => runtime.pool().length === 0, 'the failing cells to be given up');
  });

  it('pools unsandboxed too (sandbox off): the cell reads the artifact where it is', async () => {
    const runtime = createProcessRuntime({ poolSize: 1, poolMemoryMb: [128], sandbox: { mode: 'off' } });
    after(() => runtime.close());
    await poolFull(runtime, 1);
    const { instance, body } = await introspectOf(runtime, spec());
    assert.equal(instance.startMode, 'pool');
    assert.equal(body.cwd, introspect);
    assert.equal(body.env.SECRET, 'only-mine');
    assert.equal(body.env.NIMBUS_INSTANCE, instance.id);
  });
});

describe('warm pool, host process', () => {
  it('idle cells do not keep a runtime never closed alive, and exit with its process', async () => {
    const module = join(packageRoot(), 'src', 'runtime', 'process', 'process-runtime.ts');
    const script = `import { createProcessRuntime } from ${JSON.stringify(module)};
      const runtime = createProcessRuntime({ poolSize: 1, poolMemoryMb: [128] });
      const timer = setInterval(() => {
        const warm = runtime.pool().find((c) => c.state === 'warm');
        if (warm) { console.log(warm.pid); clearInterval(timer); }
      }, 20);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: packageRoot(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    const pid = Number(out.trim());
    assert.ok(pid > 0, out);
    await eventually(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'the cell to exit with its host');
  });
});

describe('linkTree', () => {
  it('mirrors a directory tree with links, keeping sub-directories and symlinks', () => {
    const from = mkdtempSync(join(tmpdir(), 'nimbus-link-'));
    const to = mkdtempSync(join(tmpdir(), 'nimbus-link-'));
    after(() => {
      rmSync(from, { recursive: true, force: true });
      rmSync(to, { recursive: true, force: true });
    });
    mkdirSync(join(from, 'lib'));
    writeFileSync(join(from, 'index.mjs'), 'export default 1;');
    writeFileSync(join(from, 'lib', 'a.js'), 'a');
    linkTree(from, to);
    assert.equal(readFileSync(join(to, 'lib', 'a.js'), 'utf8'), 'a');
    assert.equal(statSync(join(to, 'index.mjs')).ino, statSync(join(from, 'index.mjs')).ino);
  });
});
