import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';
import { type OtlpSpan, startReceiver } from '../support/otlp-receiver.js';

// Fails its first call (per instance), then answers with the traceparent it was given.
const flaky = writeSource({
  'index.js': `let calls = 0;
export default { fetch: (r) => (++calls === 1 ? new Response('not yet', { status: 500 }) : new Response(r.headers.get('traceparent'))) };
`,
  'nimbus.yaml': 'name: traced\n',
});

const TRACE = '5af92f3577b34da6a3ce929d0e0e4737';
const CALLER_SPAN = '10f067aa0ba902b8';

describe('async attempts are spans', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let node: TestNode;
  before(async () => {
    receiver = await startReceiver();
    node = await startTestNode({
      otlpEndpoint: receiver.url,
      async: { retryBaseDelayMs: 50, retryJitter: 0 },
    });
    assert.equal((await node.deploy(flaky)).status, 201);
  });
  after(async () => {
    await node.dispose();
    receiver.server.close();
  });

  it('each attempt is an `async NAME` span in the caller’s trace, and the function’s parent', async () => {
    const res = await node.call('/async/fn/traced/', {
      method: 'POST',
      headers: { traceparent: `00-${TRACE}-${CALLER_SPAN}-01` },
    });
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const done = await eventually(
      async () => {
        const view = await node.json(`/api/v1/invocations/${id}`);
        return ['succeeded', 'failed', 'dead'].includes(view.status) && view;
      },
      60_000,
      'the invocation to end',
    );
    assert.deepEqual([done.status, done.attempts], ['succeeded', 2]);

    const mine = () => receiver.spans.filter((s) => s.traceId === TRACE && s.name === 'async traced');
    await eventually(() => mine().length >= 2, 30_000, 'two attempt spans at the receiver');
    const attempts = mine();
    const attemptOf = (s: OtlpSpan) => s.attributes.find((a) => a.key === 'nimbus.attempt')?.value.intValue;
    assert.deepEqual(attempts.map(attemptOf).map(Number).sort(), [1, 2]);
    for (const s of attempts) assert.equal(s.parentSpanId, CALLER_SPAN, 'attempts are children of the caller');
    const second = attempts.find((s) => Number(attemptOf(s)) === 2)!;
    const [, traceId, parent] = String(done.result.body).split('-');
    assert.equal(traceId, TRACE);
    assert.equal(parent, second.spanId, 'the function was told the second attempt’s span as its parent');
    const fn = await eventually(
      () => receiver.spans.find((s) => s.name === 'function' && s.parentSpanId === second.spanId),
      30_000,
      'the function span under the attempt',
    );
    assert.equal(fn?.traceId, TRACE);
  });
});
