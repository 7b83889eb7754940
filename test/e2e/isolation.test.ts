// Issue 3: the hostile-function suite. One fixture per attack (test/fixtures/hostile/); for each, the
// attack fails or is contained, the caller gets a clear error, the node stays up, and a well-behaved
// neighbour keeps answering throughout (a background caller asserts it, and each test checks again).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createProcessRuntime, type ProcessRuntime } from '../../src/runtime/process/process-runtime.js';
import { eventually, FIXTURES, startTestNode, type TestNode } from '../support/nimbus.js';

const HOSTILE = join(FIXTURES, 'hostile');

describe('hostile functions, sandboxed', () => {
  let node: TestNode;
  let runtime: ProcessRuntime;
  const neighbour = { ok: 0, failures: [] as string[], stop: false, done: Promise.resolve() };
  const logLines = new Map<string, number>();

  const deploy = async (name: string, overrides: Record<string, unknown> = {}) => {
    const { status, body } = await node.deploy(join(HOSTILE, name), overrides);
    assert.equal(status, 201, JSON.stringify(body));
  };
  const platformError = async (res: Response) => ({
    status: res.status,
    header: res.headers.get('x-nimbus-error'),
    ...((await res.json()) as { error: { code: string; message: string } }).error,
  });
  const neighbourAnswers = async () => {
    const res = await node.call('/fn/neighbour/');
    assert.equal(await res.text(), 'ok');
  };
  const logsOf = async (name: string): Promise<string[]> =>
    (await node.json(`/api/v1/functions/${name}/logs?limit=1000`)).logs.map((l: { line: string }) => l.line);

  before(async () => {
    runtime = createProcessRuntime({ requireSandbox: true });
    node = await startTestNode({ runtime });
    runtime.subscribe((e) => {
      if (e.type === 'log') logLines.set(e.id, (logLines.get(e.id) ?? 0) + 1);
    });
    for (const name of ['neighbour', 'fork-bomb', 'memory-hog', 'busy-loop', 'read-shadow', 'read-paths'])
      await deploy(name);
    for (const name of ['write-outside-tmp', 'fill-tmp', 'net-none', 'stdout-flood', 'never-answers', 'exits-at-start'])
      await deploy(name);
    await deploy('seccomp-syscalls');
    await neighbourAnswers();
    // The neighbour is called back to back for the whole suite; every answer must be 'ok'.
    neighbour.done = (async () => {
      while (!neighbour.stop) {
        try {
          const res = await node.call('/fn/neighbour/');
          const text = await res.text();
          if (text === 'ok') neighbour.ok++;
          else neighbour.failures.push(`${res.status} ${text}`);
        } catch (err) {
          neighbour.failures.push(String(err));
        }
        // Paced, so the neighbour's own load stays small next to the attacks.
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
  });
  after(async () => {
    neighbour.stop = true;
    await neighbour.done;
    await node.dispose();
  });

  it('runs every instance sandboxed (bubblewrap and cgroups)', () => {
    assert.equal(runtime.sandboxed, true, runtime.warnings.join('; '));
  });

  it('fork bomb: held at pids.max inside its own instance, and stopped whole', async () => {
    assert.equal(await (await node.call('/fn/fork-bomb/')).text(), 'bomb started');
    const [id] = runtime
      .list()
      .filter((i) => i.spec.function === 'fork-bomb')
      .map((i) => i.id);
    let peak = 0;
    await eventually(
      () => {
        peak = Math.max(peak, runtime.stats(id!)?.pids ?? 0);
        return peak >= 250;
      },
      10_000,
      'the bomb to reach the process limit',
    );
    await neighbourAnswers();
    assert.ok(peak <= 256, `${peak} processes`);
    await runtime.stop(id!, { graceMs: 100 });
    assert.equal(runtime.stats(id!), undefined, 'nothing of it is left');
    await neighbourAnswers();
  });

  it('memory hog: OUT_OF_MEMORY to the caller, said in the logs, and the instance is replaced', async () => {
    const err = await platformError(await node.call('/fn/memory-hog/'));
    assert.equal(err.status, 502);
    assert.equal(err.code, 'NIMBUS_ERR_OUT_OF_MEMORY');
    assert.equal(err.header, 'NIMBUS_ERR_OUT_OF_MEMORY');
    assert.match(err.message, /ran out of memory \(128 MB\)/);
    const logs = await logsOf('memory-hog');
    assert.ok(
      logs.some((l) => /ran out of memory: killed by the kernel at its 128 MB limit/.test(l)),
      logs.join('\n'),
    );
    const res = await node.call('/fn/memory-hog/ok');
    assert.equal(await res.text(), 'ok', 'a fresh instance serves the next request');
    await neighbourAnswers();
  });

  it('busy loop: TIMEOUT to the caller; the CPU quota leaves the neighbour its share', async () => {
    const err = await platformError(await node.call('/fn/busy-loop/'));
    assert.equal(err.status, 504);
    assert.equal(err.code, 'NIMBUS_ERR_TIMEOUT');
    await neighbourAnswers();
  });

  it('cannot read /etc/shadow', async () => {
    assert.deepEqual(await node.json('/fn/read-shadow/'), { error: 'ENOENT' });
  });

  it("cannot see the data dir, another function's artifact, /root or other processes", async () => {
    const artifacts = join(node.dataDir, 'artifacts');
    const paths = [node.dataDir, artifacts, '/root', '/proc/1/environ', '/nimbus/code'];
    const q = new URLSearchParams(paths.map((p): [string, string] => ['path', p]));
    const body = await node.json(`/fn/read-paths/?${q}`);
    assert.deepEqual(body[node.dataDir], { error: 'ENOENT' });
    assert.deepEqual(body[artifacts], { error: 'ENOENT' });
    assert.deepEqual(body['/root'], { error: 'ENOENT' });
    // pid 1 is the sandbox's own init, and it belongs to root: not readable.
    assert.deepEqual(body['/proc/1/environ'], { error: 'EACCES' });
    assert.deepEqual(body['/nimbus/code'].sort(), ['index.mjs', 'index.mjs.map'], 'only its own code');
  });

  it('cannot write outside /tmp', async () => {
    const body = await node.json('/fn/write-outside-tmp/');
    assert.equal(body['/tmp/ok'], 'written');
    for (const [path, result] of Object.entries(body)) {
      if (path !== '/tmp/ok') assert.notEqual(result, 'written', `${path} was written`);
    }
  });

  it('fills /tmp only up to its size (64 MB)', async () => {
    const body = await node.json('/fn/fill-tmp/');
    assert.equal(body.error, 'ENOSPC');
    assert.ok(body.written <= 64 * 1024 * 1024, `${body.written} bytes written`);
    await neighbourAnswers();
  });

  describe('network: none', () => {
    let listener: Server;
    let connections = 0;
    let port = 0;
    before(async () => {
      listener = createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
      port = (listener.address() as { port: number }).port;
    });
    after(() => new Promise<void>((resolve) => listener.close(() => resolve())));

    it('cannot reach the host, not even its loopback', async () => {
      const body = await node.json(`/fn/net-none/?port=${port}`);
      assert.deepEqual(body, { connected: false, error: 'ECONNREFUSED' });
      assert.equal(connections, 0);
    });

    it('while the same code with network: egress can (the control)', async () => {
      await deploy('net-none', { name: 'net-egress', network: 'egress' });
      const body = await node.json(`/fn/net-egress/?port=${port}`);
      assert.deepEqual(body, { connected: true });
    });
  });

  it('stdout flood: rate-limited and noted in the logs; the node keeps a bounded count', async () => {
    const res = await node.call('/fn/stdout-flood/');
    assert.equal(await res.text(), 'flooded');
    const [id] = runtime
      .list()
      .filter((i) => i.spec.function === 'stdout-flood')
      .map((i) => i.id);
    // One second's burst (1000 lines) plus what refills while it prints; never the 200,000 lines.
    assert.ok((logLines.get(id!) ?? 0) < 5000, `${logLines.get(id!)} lines logged`);
    // The note comes with the next line that passes, or when the instance exits.
    await runtime.stop(id!);
    const logs = await logsOf('stdout-flood');
    assert.ok(
      logs.some((l) => /^\[nimbus\] … \d+ lines dropped: output over 1000 lines\/s/.test(l)),
      logs.slice(-3).join('\n'),
    );
    await neighbourAnswers();
  });

  it('seccomp: denied system calls fail with EPERM, fork, threads and the rest keep working', async () => {
    assert.equal(runtime.seccomp, true, runtime.warnings.join('; '));
    const res = await node.call('/fn/seccomp-syscalls/');
    assert.equal(res.status, 200);
    const got = (await res.json()) as Record<string, string>;
    const allowed = ['personality_query', 'getpid', 'fork', 'thread'];
    // clone3's flags are in memory, out of a filter's reach: ENOSYS sends glibc back to clone.
    const expected = Object.fromEntries(
      Object.keys(got).map((k) => [k, allowed.includes(k) ? 'ok' : k === 'clone3' ? 'ENOSYS' : 'EPERM']),
    );
    assert.deepEqual(got, expected);
    assert.ok(Object.keys(got).length >= 20, Object.keys(got).join(' '));
    await neighbourAnswers();
  });

  it('never answers: TIMEOUT to the caller', async () => {
    const err = await platformError(await node.call('/fn/never-answers/'));
    assert.equal(err.status, 504);
    assert.equal(err.code, 'NIMBUS_ERR_TIMEOUT');
  });

  it('exits at start: START_FAILED with its last words, then fails fast while backing off', async () => {
    const err = await platformError(await node.call('/fn/exits-at-start/'));
    assert.equal(err.status, 502);
    assert.equal(err.code, 'NIMBUS_ERR_START_FAILED');
    assert.match(err.message, /exited with code 3[\s\S]*giving up at init/);
    const again = await platformError(await node.call('/fn/exits-at-start/'));
    assert.equal(again.code, 'NIMBUS_ERR_START_FAILED');
  });

  it('the node stayed up and the neighbour answered every call throughout', async () => {
    assert.equal((await node.call('/healthz')).status, 200);
    await neighbourAnswers();
    assert.deepEqual(neighbour.failures, []);
    assert.ok(neighbour.ok > 10, `${neighbour.ok} neighbour calls`);
  });
});
