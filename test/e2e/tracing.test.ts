import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { APPS, eventually, readJson, startTestNode, type TestNode } from '../support/nimbus.js';
import { type OtlpSpan, startReceiver } from '../support/otlp-receiver.js';
import { openSocket } from '../support/websocket.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

describe('traces', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let node: TestNode;
  before(async () => {
    receiver = await startReceiver();
    node = await startTestNode({ otlpEndpoint: receiver.url });
    assert.equal((await node.deploy(`${APPS}/echo`)).status, 201);
  });
  after(async () => {
    await node.dispose();
    receiver.server.close();
  });
  /** The spans of one trace at the receiver, once there are at least `n`. */
  const spansOf = async (traceId: string, n: number): Promise<OtlpSpan[]> => {
    const of = () => receiver.spans.filter((x) => x.traceId === traceId);
    await eventually(() => of().length >= n, 30_000, `${n} spans of trace ${traceId} at the receiver`);
    return of();
  };

  it('continues the caller’s trace: the function sees the gateway span as parent, spans reach the OTLP receiver', async () => {
    const res = await node.call('/fn/echo/', { headers: { traceparent: `00-${TRACE}-${CALLER_SPAN}-01` } });
    assert.equal(res.status, 200);
    const seen = (await readJson(res)).headers.traceparent as string;
    const [version, traceId, gatewaySpan, flags] = seen.split('-');
    assert.equal(version, '00');
    assert.equal(traceId, TRACE, 'same trace');
    assert.notEqual(gatewaySpan, CALLER_SPAN, 'the parent is the gateway span, not the caller');
    assert.equal(flags, '01');

    const mine = await spansOf(TRACE, 4);
    assert.match(receiver.paths[0]!, /^POST \/v1\/traces application\/json/);
    const byName = (n: string) => mine.find((s) => s.name === n);
    const gateway = byName('gateway echo');
    assert.ok(gateway, `spans: ${mine.map((s) => s.name).join(', ')}`);
    assert.equal(gateway.spanId, gatewaySpan, 'the span the function was told is the gateway span');
    assert.equal(gateway.parentSpanId, CALLER_SPAN);
    const wait = byName('activator wait');
    const cold = byName('cold start');
    const fn = byName('function');
    assert.equal(wait?.parentSpanId, gateway.spanId);
    assert.equal(cold?.parentSpanId, wait?.spanId, 'the first request waited for a cold start');
    assert.equal(fn?.parentSpanId, gateway.spanId);
    assert.ok(BigInt(fn!.startTimeUnixNano) >= BigInt(wait!.endTimeUnixNano) - 1_000_000n, 'function after the wait');
    const status = gateway.attributes.find((a) => a.key === 'http.response.status_code');
    assert.equal(Number(status?.value.intValue), 200);

    // The request record carries the trace id, so logs lead to the trace.
    const { logs } = await node.json('/api/v1/functions/echo/logs?kind=request');
    assert.equal(logs.at(-1).traceId, TRACE);
  });

  it('traces a WebSocket as one gateway span over its life, the app told the gateway span as parent', async () => {
    assert.equal((await node.deploy(`${APPS}/ws-echo`)).status, 201);
    const trace = 'aaf92f3577b34da6a3ce929d0e0e4736';
    const ws = node.url.replace(/^http/, 'ws');
    const socket = await openSocket(`${ws}/fn/ws-echo/`, { traceparent: `00-${trace}-${CALLER_SPAN}-01` });
    socket.ws.send('who');
    const told = /traceparent=(\S+)/.exec(await socket.next())![1]!;
    const [, traceId, parent] = told.split('-');
    assert.equal(traceId, trace);
    socket.ws.close(1000);
    await socket.closed;
    const [gateway] = (await spansOf(trace, 1)).filter((s) => s.name === 'gateway ws-echo');
    assert.ok(gateway);
    assert.equal(gateway.spanId, parent, "the app's parent is the gateway span");
    assert.equal(gateway.parentSpanId, CALLER_SPAN);
    const status = gateway.attributes.find((a) => a.key === 'http.response.status_code');
    assert.equal(Number(status?.value.intValue), 101);
  });

  it('starts a trace when none comes in, and a warm request has no cold-start span', async () => {
    const res = await node.call('/fn/echo/', { headers: { traceparent: 'garbage' } });
    const [, traceId, spanId] = ((await readJson(res)).headers.traceparent as string).split('-');
    assert.notEqual(traceId, TRACE);
    const mine = await spansOf(traceId!, 3);
    const gateway = mine.find((s) => s.name === 'gateway echo');
    assert.equal(gateway?.spanId, spanId);
    assert.equal(gateway?.parentSpanId || undefined, undefined, 'a root span');
    assert.equal(
      mine.find((s) => s.name === 'cold start'),
      undefined,
    );
  });

  it('stores the traceparent with async invocations and hands it to the function when they run', async () => {
    const given = `00-${TRACE}-${CALLER_SPAN}-01`;
    const withTrace = await node.call('/async/fn/echo/', { method: 'POST', headers: { traceparent: given } });
    const without = await node.call('/async/fn/echo/', { method: 'POST' });
    const seenBy = async (res: Response) => {
      const { id } = await readJson(res);
      const view = await eventually(
        async () => {
          const v = await node.json(`/api/v1/invocations/${id}`);
          return v.status === 'succeeded' ? v : undefined;
        },
        60_000,
        'the async invocation to succeed',
      );
      // Tracing is on: the function's parent is the attempt's span (`async echo`), in the stored trace.
      const [, storedTrace, storedSpan] = view.request.headers.traceparent.split('-');
      const [, seenTrace, seenSpan] = JSON.parse(view.result.body).headers.traceparent.split('-');
      assert.equal(seenTrace, storedTrace);
      const attempt = await eventually(() => receiver.spans.find((s) => s.spanId === seenSpan), 30_000, 'attempt span');
      assert.deepEqual([attempt?.name, attempt?.parentSpanId], ['async echo', storedSpan]);
      return view.request.headers.traceparent as string;
    };
    assert.equal(await seenBy(withTrace), given, 'the caller’s trace context reaches the function');
    assert.match(await seenBy(without), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'a new trace is started and stored');
  });
});
