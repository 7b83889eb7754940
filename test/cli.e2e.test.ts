import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startNimbus } from '../src/cmd/serve.js';
import { packageRoot } from '../src/core/package-root.js';

/*
 * The real `nimbus` binary (bin/nimbus.js → dist/nimbus.mjs, so `npm run build` first) as a child
 * process, against a real node started in-process on port 0.
 */

const root = packageRoot();
const bin = join(root, 'bin', 'nimbus.js');
const built = existsSync(join(root, 'dist', 'nimbus.mjs'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function nimbus(url: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: root, env: { ...process.env, NIMBUS_URL: url } },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Exactly one `nimbus: …` line on stderr: the CLI's promise for every failure. */
function assertOneErrorLine(run: Run): void {
  assert.match(run.stderr, /^nimbus: [^\n]+\n$/, `stderr was: ${JSON.stringify(run.stderr)}`);
}

describe('nimbus CLI end to end', () => {
  // npm test builds first; a missing build is a failure here, never a skip.
  before(() => assert.ok(built, 'dist/nimbus.mjs missing: run `npm run build` first'));
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-cli-e2e-'));
  let node: Awaited<ReturnType<typeof startNimbus>>;
  let url = '';
  before(async () => {
    node = await startNimbus({ port: 0, dataDir, examples: false });
    url = node.url;
  });
  after(async () => {
    await node?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('deploys examples/hello as r1, then reports an identical redeploy as unchanged', async () => {
    const first = await nimbus(url, 'deploy', 'examples/hello');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^ready: hello r1 {2}http:\/\/.+\/fn\/hello\/\n$/);
    assert.match(first.stderr, /packing examples\/hello…[\s\S]*uploading[\s\S]*building…/);

    const again = await nimbus(url, 'deploy', 'examples/hello');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'unchanged: hello r1 (identical source and config)\n');
  });

  it('invokes hello and prints its body', async () => {
    const run = await nimbus(url, 'invoke', 'hello', '--path', '/world');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Hello from Nimbus!.*\/world/);
  });

  it('shows hello in ls and get, as text and as JSON', async () => {
    const ls = await nimbus(url, 'ls');
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^NAME +REVISION +RUNTIME +INSTANCES +UPDATED +URL\n/);
    assert.match(ls.stdout, /\nhello +r1 +node /);
    const lsJson = JSON.parse((await nimbus(url, 'list', '--json')).stdout);
    assert.deepEqual(
      lsJson.functions.map((f: { name: string }) => f.name),
      ['hello'],
    );

    const get = await nimbus(url, 'get', 'hello');
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /name: +hello/);
    assert.match(get.stdout, /revisions:\nID +DIGEST +CREATED\nr1 +[0-9a-f]{12} /);
    const getJson = JSON.parse((await nimbus(url, 'describe', 'hello', '--json')).stdout);
    assert.equal(getJson.function.name, 'hello');
    assert.equal(getJson.revisions[0].id, 'r1');
  });

  it("shows the function's log lines", async () => {
    await nimbus(url, 'invoke', 'hello', '--path', '/logged');
    // Log records are written as the instance prints them, so allow a moment for the line to land.
    const deadline = Date.now() + 5000;
    let run: Run;
    do {
      run = await nimbus(url, 'logs', 'hello');
      if (/\[r1 [^\]]+\].* GET \/logged/.test(run.stdout)) break;
      await new Promise((r) => setTimeout(r, 100));
    } while (Date.now() < deadline);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^\S+ \[r1 [^\]]+\] (\[[^\]]+\] )?GET \/logged$/m);
  });

  it('deletes hello; invoking it afterwards fails with exit 1 and one line', async () => {
    const rm = await nimbus(url, 'rm', 'hello');
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout, 'deleted hello\n');
    const gone = await nimbus(url, 'invoke', 'hello');
    assert.equal(gone.code, 1);
    assertOneErrorLine(gone);
    assert.match(gone.stderr, /NIMBUS_ERR_FUNCTION_NOT_FOUND/);
  });

  it('rejects a bad flag with exit 2 before uploading anything', async () => {
    const run = await nimbus(url, 'deploy', 'examples/hello', '--memory', 'lots');
    assert.equal(run.code, 2);
    assertOneErrorLine(run);
    assert.equal((await nimbus(url, 'ls', '--json')).stdout.includes('"hello"'), false, 'nothing was deployed');
  });

  it('says the server is unreachable with exit 1', async () => {
    // A port that was free a moment ago: nothing listens there now.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const run = await nimbus(`http://127.0.0.1:${port}`, 'ls');
    assert.equal(run.code, 1);
    assertOneErrorLine(run);
    assert.equal(
      run.stderr,
      `nimbus: cannot reach Nimbus at http://127.0.0.1:${port} (is \`nimbus serve\` running?)\n`,
    );
  });
});
