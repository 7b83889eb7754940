import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { APPS, eventually, startTestNode, type TestNode } from '../support/nimbus.js';

/** The value of one series in a Prometheus text exposition, or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The lines of the series whose name and first labels start with `prefix`. */
function lines(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

describe('Prometheus metrics', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
    assert.equal((await node.deploy(`${APPS}/echo`)).status, 201);
  });
  after(() => node.dispose());

  it('counts invocations, cold starts, errors by kind and durations after known traffic', async () => {
    for (const path of ['/', '/', '/pid', '/throw']) await (await node.call(`/fn/echo${path}`)).arrayBuffer();
    await (await node.call('/fn/missing/')).arrayBuffer();
    const res = await node.call('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    const echo = 'function="echo",revision="r1"';
    assert.equal(
      value(text, `nimbus_invocations_total{${echo},status="2xx",cold="true"}`),
      1,
      'the first request waited for a cold start',
    );
    assert.equal(value(text, `nimbus_invocations_total{${echo},status="2xx",cold="false"}`), 2);
    assert.equal(value(text, `nimbus_invocations_total{${echo},status="5xx",cold="false"}`), 1);
    assert.equal(value(text, 'nimbus_invocation_errors_total{function="echo",kind="function",code=""}'), 1);
    assert.equal(
      value(text, 'nimbus_invocation_errors_total{function="",kind="platform",code="NIMBUS_ERR_FUNCTION_NOT_FOUND"}'),
      1,
    );
    assert.equal(value(text, `nimbus_invocation_duration_seconds_count{${echo}}`), 4);
    // One start, by whichever mode the instance manager used (spawn, a warm pool cell, a snapshot).
    const [start, ...more] = lines(text, `nimbus_cold_starts_total{${echo},`);
    assert.equal(more.length, 0);
    const mode = /mode="(spawn|pool|snapshot)",outcome="ready"} 1$/.exec(start ?? '')?.[1];
    assert.ok(mode, start);
    assert.equal(value(text, `nimbus_cold_start_duration_seconds_count{function="echo",mode="${mode}"}`), 1);
    assert.equal(value(text, `nimbus_instances{${echo},state="ready"}`), 1);
    assert.equal(value(text, 'nimbus_inflight_requests'), 0);
    assert.ok(
      (value(text, 'nimbus_node_process_resident_memory_bytes') ?? 0) > 0,
      'the node reports its own process metrics',
    );
  });

  it('shows requests held for an instance slot and async invocations by state', async () => {
    assert.equal(
      (await node.deploy(`${APPS}/echo`, { name: 'held', concurrency: 1, scale: { max: 1 }, timeout: 60 })).status,
      201,
    );
    const slow = node.call('/fn/held/sleep?ms=3000');
    await eventually(async () => value(await (await node.call('/metrics')).text(), 'nimbus_inflight_requests') === 1);
    const waiting = node.call('/fn/held/');
    const text: string = await eventually(
      async () => {
        const t = await (await node.call('/metrics')).text();
        return value(t, 'nimbus_activator_queue_length{function="held"}') === 1 ? t : '';
      },
      30_000,
      'the second request to be held',
    );
    assert.equal(value(text, 'nimbus_inflight_requests'), 2);
    assert.equal((await slow).status, 200);
    assert.equal((await waiting).status, 200);

    const { id } = await node.json('/async/fn/held/', { method: 'POST' });
    await eventually(async () => (await node.json(`/api/v1/invocations/${id}`)).status === 'succeeded', 60_000);
    const after = await (await node.call('/metrics')).text();
    assert.equal(value(after, 'nimbus_async_queue_depth{function="held",state="queued"}'), 0);
    assert.equal(value(after, 'nimbus_async_queue_depth{function="held",state="dead"}'), 0);
    assert.equal(value(after, 'nimbus_activator_queue_length{function="held"}') ?? 0, 0);
    const starts = lines(after, 'nimbus_cold_starts_total{function="held"');
    assert.equal(starts.length, 1, starts.join('\n'));
    assert.match(starts[0]!, /mode="(spawn|pool|snapshot)",outcome="ready"} 1$/);
  });

  it('meters usage per function and hour, as JSON and CSV', async () => {
    const { usage } = await node.json('/api/v1/usage?function=echo');
    assert.equal(usage.length, 1);
    const [row] = usage;
    assert.equal(row.invocations, 4);
    assert.equal(row.coldStarts, 1);
    assert.ok(row.egressBytes > 4 * 100, `four responses with headers and bodies, got ${row.egressBytes} bytes`);
    // 256 MB for at least 1 ms each: 4 × 0.25 GB × 0.001 s.
    assert.ok(row.gbSeconds >= 0.001, `gbSeconds ${row.gbSeconds}`);
    assert.equal(row.hour, `${new Date().toISOString().slice(0, 13)}:00:00.000Z`);
    const csv = await (await node.call('/api/v1/usage?format=csv')).text();
    assert.match(csv, /^function,hour,invocations,gb_seconds,cold_starts,egress_bytes\necho,/);
    assert.doesNotMatch(csv, /missing/, 'unknown functions are not metered');
    assert.equal((await node.call('/api/v1/usage?format=xml')).status, 400);
  });

  it('meters async invocations (and so trigger-driven work) too', async () => {
    const before = (await node.json('/api/v1/usage?function=echo')).usage[0];
    const { id } = await node.json('/async/fn/echo/sleep?ms=400', { method: 'POST', body: 'x' });
    await eventually(async () => (await node.json(`/api/v1/invocations/${id}`)).status === 'succeeded', 20_000);
    const after = (await node.json('/api/v1/usage?function=echo')).usage[0];
    assert.equal(after.invocations, before.invocations + 1);
    // 256 MB for at least 400 ms: ≥ 0.25 GB × 0.4 s.
    assert.ok(after.gbSeconds - before.gbSeconds >= 0.1, `+${after.gbSeconds - before.gbSeconds} GB-s`);
    assert.equal(after.egressBytes, before.egressBytes, 'an async answer is stored, not sent out');
  });
});
