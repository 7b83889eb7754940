// The log store's writer thread: what the main thread reads right after appending, what close()
// leaves on disk, and what happens when the thread dies or SQLite refuses a write.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, mock } from 'node:test';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { decodeBatch, encodeBatch } from './log-batch.js';
import { createLogStore, type LogRecord, requestRecord } from './log-store.js';

const dir = mkdtempSync(join(tmpdir(), 'nimbus-log-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const dbPath = () => join(dir, `logs-${++files}.db`);

const T = Date.now();
const line = (i: number, fn = 'f'): LogRecord => ({
  time: T + i,
  function: fn,
  revision: 'r1',
  instance: 'i1',
  stream: 'stdout',
  line: `line ${i}`,
  requestId: `req-${i}`,
});
const count = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) FROM logs').pluck().get() as number) ?? 0;
  } finally {
    db.close();
  }
};
/** console.warn's lines while `fn` runs. */
async function warnings(fn: () => Promise<void>): Promise<string[]> {
  const warn = mock.method(console, 'warn', () => {});
  try {
    await fn();
    return warn.mock.calls.map((c) => String(c.arguments[0]));
  } finally {
    warn.mock.restore();
  }
}

describe('log store writer thread', () => {
  it('hands records over as columns and reads them back as they were', () => {
    const records: LogRecord[] = [
      line(1),
      { ...line(2), line: 'ünïcødé 🚀 and a\nnewline', requestId: undefined },
      { ...line(3, 'g'), stream: 'stderr', line: '' },
      requestRecord(
        { requestId: 'r', function: 'g', status: 504, durationMs: 3.5, cold: true, error: 'E', traceId: 't' },
        T,
      ),
      requestRecord({ requestId: 'r2', function: 'g', revision: 'r1', status: 200, durationMs: 1, cold: false }, T),
    ];
    const { values, functions, lineLengths } = decodeBatch(structuredClone(encodeBatch(records)));
    const rows = records.map((_, i) => values.slice(i * 12, i * 12 + 12));
    assert.deepEqual(rows[0], [T + 1, 'f', 'r1', 'i1', 'req-1', 'stdout', 'line 1', null, null, null, null, null]);
    assert.deepEqual(rows[1]!.slice(4, 7), [null, 'stdout', 'ünïcødé 🚀 and a\nnewline']);
    assert.deepEqual(rows[2]!.slice(1, 7), ['g', 'r1', 'i1', 'req-3', 'stderr', '']);
    assert.deepEqual(rows[3], [T, 'g', '', '', 'r', 'request', '', 504, 3.5, 1, 'E', 't']);
    assert.deepEqual(rows[4]!.slice(1, 12), ['g', 'r1', '', 'r2', 'request', '', 200, 1, 0, null, null]);
    assert.deepEqual(functions, ['f', 'f', 'g', 'g', 'g']);
    assert.deepEqual(lineLengths, [6, 24, 0, 0, 0]);
  });

  it('a query sees every record appended before it, and none appended after', async () => {
    const logs = createLogStore({ path: dbPath() });
    for (let i = 0; i < 5000; i++) logs.append(line(i));
    logs.append(requestRecord({ requestId: 'last', function: 'f', status: 201, durationMs: 2, cold: true }, T + 9000));
    const all = logs.query({ function: 'f', limit: 10_000 });
    // Appended while the query waits for the writer: not in its answer.
    logs.append(line(5001));
    const rows = await all;
    assert.equal(rows.length, 5001);
    assert.equal(rows[0]!.line, 'line 0');
    assert.equal(rows.at(-1)!.line, '201 2 ms cold start');
    assert.deepEqual(
      (await logs.query({ function: 'f', requestId: 'last' })).map((r) => [r.status, r.cold]),
      [[201, true]],
    );
    assert.equal((await logs.query({ function: 'f', requestId: 'req-5001' })).length, 1);
    logs.deleteFunction('f');
    assert.equal((await logs.query({ function: 'f' })).length, 0, 'a query after a delete sees it done');
    await logs.close();
  });

  it('close() writes every record appended before it', async () => {
    const path = dbPath();
    const logs = createLogStore({ path });
    for (let i = 0; i < 3000; i++) logs.append(line(i, `fn${i % 3}`));
    await logs.close();
    assert.equal(count(path), 3000);
  });

  it('records appended before SIGTERM are on disk after the process exits', async () => {
    const path = dbPath();
    // A process as `nimbus serve` is: SIGTERM closes the store, then the process ends.
    const script = `
      import { createLogStore } from ${JSON.stringify(new URL('./log-store.ts', import.meta.url).href)};
      const logs = createLogStore({ path: ${JSON.stringify(path)} });
      process.once('SIGTERM', async () => { await logs.close(); process.exit(0); });
      for (let i = 0; i < 2000; i++)
        logs.append({ time: i, function: 'f', revision: 'r1', instance: 'i', stream: 'stdout', line: 'x' + i });
      console.log('appended');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout.on('data', (d) => String(d).includes('appended') && resolve()));
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    assert.equal(count(path), 2000);
  });

  it('a writer thread that dies is started again, and what it had not written is written once', async () => {
    const threads: Worker[] = [];
    const logs = createLogStore({ path: dbPath(), onWriterThread: (w) => threads.push(w) });
    const said = await warnings(async () => {
      for (let i = 0; i < 500; i++) logs.append(line(i));
      await logs.query({ function: 'f' });
      for (let i = 500; i < 1000; i++) logs.append(line(i));
      // prune() hands the batch over; the thread is ended before (or while) it writes it.
      const pruned = logs.prune();
      await threads[0]!.terminate();
      await pruned;
      for (let i = 1000; i < 1200; i++) logs.append(line(i));
      const rows = await logs.query({ function: 'f', limit: 10_000 });
      assert.equal(rows.length, 1200);
      assert.equal(new Set(rows.map((r) => r.line)).size, 1200, 'no record twice');
    });
    assert.equal(threads.length, 2);
    assert.ok(
      said.some((w) => /log writer thread stopped .*starting it again/.test(w)),
      said.join('\n'),
    );
    await logs.close();
  });

  it('an SQLite error loses the batch with a warning that counts it; writes resume after', async () => {
    const path = dbPath();
    const logs = createLogStore({ path });
    logs.append(line(0));
    await logs.query({ function: 'f' });
    // Another connection makes every insert fail, as a full disk or a broken file would.
    const other = new Database(path);
    other.exec(`CREATE TRIGGER refuse BEFORE INSERT ON logs BEGIN SELECT RAISE(ABORT, 'no room'); END`);
    const said = await warnings(async () => {
      for (let i = 1; i <= 10; i++) logs.append(line(i));
      assert.equal((await logs.query({ function: 'f' })).length, 1);
    });
    assert.ok(
      said.some((w) => /log records not written: 10 \(.*no room\)/.test(w)),
      said.join('\n'),
    );
    other.exec('DROP TRIGGER refuse');
    other.close();
    logs.append(line(11));
    assert.deepEqual(
      (await logs.query({ function: 'f' })).map((r) => r.line),
      ['line 0', 'line 11'],
    );
    await logs.close();
  });

  it('a writer thread that cannot start: warnings, records counted as lost, queries and close() still answer', async () => {
    const logs = createLogStore({ path: dbPath(), writerEntry: new URL('./no-such-writer.mjs', import.meta.url) });
    const seen: string[] = [];
    logs.follow('f', (r) => seen.push(r.line));
    const said = await warnings(async () => {
      for (let i = 0; i < 5; i++) logs.append(line(i));
      assert.deepEqual(await logs.query({ function: 'f' }), []);
      await logs.close();
    });
    assert.equal(seen.length, 5, 'followers still get every record');
    const text = said.join('\n');
    assert.match(text, /log writer thread stopped \(Cannot find module .*no-such-writer\.mjs/);
    assert.match(text, /log records not written: 5 \(the log writer thread died on them twice\)/);
  });

  it('follows get each record at once, before any write', async () => {
    const logs = createLogStore({ path: dbPath() });
    const seen: string[] = [];
    const stop = logs.follow('f', (r) => seen.push(r.line));
    logs.append(line(1));
    logs.append(requestRecord({ requestId: 'a', function: 'f', status: 200, durationMs: 1, cold: false }, 2));
    assert.deepEqual(seen, ['line 1', '200 1 ms warm']);
    stop();
    await logs.close();
  });
});
