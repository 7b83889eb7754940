import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/index.js';
import { readEvents } from '../../src/cli/logs.js';
import { APPS, startTestNode, type TestNode } from '../support/nimbus.js';

describe('per-invocation log records', () => {
  let node: TestNode;
  const ids: Record<string, string> = {};
  before(async () => {
    node = await startTestNode();
    assert.equal((await node.deploy(`${APPS}/echo`)).status, 201);
    for (const [key, path] of [
      ['ok', '/'],
      ['throw', '/throw'],
      ['log', '/log?tag=a'],
    ]) {
      const res = await node.call(`/fn/echo${path}`);
      await res.arrayBuffer();
      ids[key!] = res.headers.get('x-nimbus-request-id')!;
    }
  });
  after(() => node.dispose());

  it('leaves one request record per invocation with status, duration, instance and cold or warm', async () => {
    const { logs } = await node.json('/api/v1/functions/echo/logs?kind=request');
    assert.deepEqual(
      logs.map((r: any) => [r.requestId, r.status, r.cold, r.stream, r.revision]),
      [
        [ids.ok, 200, true, 'request', 'r1'],
        [ids.throw, 500, false, 'request', 'r1'],
        [ids.log, 200, false, 'request', 'r1'],
      ],
    );
    for (const r of logs) {
      assert.ok(r.durationMs > 0);
      assert.match(r.instance, /^echo-r1/);
      assert.match(r.time, /^\d{4}-\d\d-\d\dT/);
    }
  });

  it('filters by request id, status and time range', async () => {
    const one = await node.json(`/api/v1/functions/echo/logs?requestId=${ids.log}`);
    assert.deepEqual(
      one.logs.map((r: any) => r.line),
      ['log line a', `200 ${one.logs[1].durationMs} ms warm`],
    );
    const failed = await node.json('/api/v1/functions/echo/logs?status=5xx');
    assert.ok(failed.logs.length >= 2, 'the error the function logged, then its record');
    assert.ok(failed.logs.every((r: any) => r.requestId === ids.throw));
    assert.match(failed.logs.map((r: any) => r.line).join('\n'), /boom from the function/);
    assert.equal(failed.logs.at(-1).status, 500);
    const { logs: all } = await node.json('/api/v1/functions/echo/logs?kind=request');
    const between = await node.json(
      `/api/v1/functions/echo/logs?kind=request&since=${Date.parse(all[1].time)}&until=${Date.parse(all[2].time)}`,
    );
    assert.deepEqual(
      between.logs.map((r: any) => r.requestId),
      all[1].time === all[2].time ? [] : [ids.throw],
    );
    const bad = await node.call('/api/v1/functions/echo/logs?status=9xx');
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.code, 'NIMBUS_ERR_INVALID_REQUEST');
  });

  it('follows only the failed requests, each with its own lines, with ?follow=true&status=5xx', async () => {
    const abort = new AbortController();
    const res = await node.call('/api/v1/functions/echo/logs?follow=true&status=5xx&limit=1', { signal: abort.signal });
    const events = readEvents(res.body as unknown as AsyncIterable<Uint8Array>);
    const first = await events.next();
    assert.equal(first.value?.requestId, ids.throw, 'history first (the last matching record)');
    const ok = await node.call('/fn/echo/log?tag=live-ok');
    await ok.arrayBuffer();
    const boom = await node.call('/fn/echo/throw');
    await boom.arrayBuffer();
    const boomId = boom.headers.get('x-nimbus-request-id');
    const seen = [];
    for await (const r of events) {
      seen.push(r);
      if (r.stream === 'request') break;
    }
    abort.abort();
    assert.ok(
      seen.every((r) => r.requestId === boomId),
      'nothing of the 200 request',
    );
    assert.equal(seen.at(-1)?.status, 500);
    assert.ok(seen.length >= 2, 'the held lines came before the record');
  });

  it('nimbus logs NAME --status 5xx --requests prints the REPORT lines of failed requests', async () => {
    const stdout = new PassThrough();
    const out: Buffer[] = [];
    stdout.on('data', (c) => out.push(c));
    const code = await runCli(['logs', 'echo', '--status', '5xx', '--requests', '--since', '10m'], {
      context: {
        stdout,
        stderr: new PassThrough(),
        stdin: Readable.from([]),
        env: { NIMBUS_URL: node.url },
        now: Date.now,
      },
    });
    assert.equal(code, 0);
    const lines = Buffer.concat(out).toString().trim().split('\n');
    assert.ok(lines.length >= 1);
    for (const l of lines) assert.match(l, /\[r1 echo-r1[^\]]*\] \[[0-9a-f-]{36}\] REPORT 500 [\d.]+ ms warm$/);
    const byId = new PassThrough();
    const got: Buffer[] = [];
    byId.on('data', (c) => got.push(c));
    await runCli(['logs', 'echo', '--request', ids.log!], {
      context: { stdout: byId, stderr: new PassThrough(), stdin: Readable.from([]), env: { NIMBUS_URL: node.url } },
    });
    assert.match(Buffer.concat(got).toString(), /log line a\n.*REPORT 200/);
  });
});

describe('log retention set on the node', () => {
  it('keeps at most --log-max-records records per function', async () => {
    const node = await startTestNode({ logRetention: { maxRecordsPerFunction: 5 } });
    try {
      assert.equal((await node.deploy(`${APPS}/echo`)).status, 201);
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const res = await node.call(`/fn/echo/log?tag=${i}`);
        await res.arrayBuffer();
        ids.push(res.headers.get('x-nimbus-request-id')!);
      }
      const { logs } = await node.json('/api/v1/functions/echo/logs?limit=1000');
      assert.equal(logs.length, 5, logs.map((r: any) => r.line).join('\n'));
      assert.equal(logs.at(-1).requestId, ids.at(-1), 'the newest are kept');
    } finally {
      await node.dispose();
    }
  });
});
