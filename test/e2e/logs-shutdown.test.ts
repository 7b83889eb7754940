// The built node (bin/nimbus.js → dist/nimbus.mjs, whose log writer thread is dist/log-worker.mjs):
// request records of calls answered just before SIGTERM are on disk once the process has exited.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { APPS } from '../support/nimbus.js';
import { serveProcess } from '../support/serve-process.js';

describe('log records at shutdown', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-logs-shutdown-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('writes every request record appended before SIGTERM, from the bundle', async () => {
    const { child, url, output } = await serveProcess(dataDir);
    const { packDirectory } = await import('../../src/cli/pack.js');
    const { archive } = await packDirectory(`${APPS}/echo`);
    assert.equal((await fetch(`${url}/api/v1/functions`, { method: 'POST', body: archive })).status, 201);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${url}/fn/echo/log?tag=${i}`);
      await res.arrayBuffer();
      ids.push(res.headers.get('x-nimbus-request-id')!);
    }
    // The API reads its own writes: all 40 records, through the writer thread.
    const { logs } = (await (await fetch(`${url}/api/v1/functions/echo/logs?kind=request`)).json()) as {
      logs: { requestId: string }[];
    };
    assert.deepEqual(
      logs.map((r) => r.requestId),
      ids,
    );
    // 40 more, then SIGTERM at once: these are still in the main thread's buffer.
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const res = await fetch(`${url}/fn/echo/log?tag=late-${i}`);
        await res.arrayBuffer();
        ids.push(res.headers.get('x-nimbus-request-id')!);
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output());
    assert.doesNotMatch(output(), /log records not written|log writer thread/);

    const db = new Database(join(dataDir, 'logs.db'), { readonly: true });
    const rows = db
      .prepare("SELECT request_id FROM logs WHERE function = 'echo' AND stream = 'request'")
      .pluck()
      .all() as string[];
    const lines = db
      .prepare(
        "SELECT COUNT(*) FROM logs WHERE function = 'echo' AND stream = 'stdout' AND line LIKE 'log line late-%'",
      )
      .pluck()
      .get();
    db.close();
    assert.deepEqual(new Set(rows), new Set(ids));
    assert.equal(rows.length, 80);
    assert.equal(lines, 40, 'the lines the late requests logged');
  });
});
