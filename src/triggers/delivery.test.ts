import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { hasCode, NimbusError } from '../core/errors.js';
import { createRedeliveryIds, fireUntilEnded, redactUrl } from './delivery.js';
import type { FireResult, TriggerContext, TriggerEvent } from './types.js';
import { checkConfig, type FieldRule } from './validate.js';

const turns = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('redelivery ids', () => {
  it('a redelivery after a lost connection gets the id its message had; fresh messages get new ids', () => {
    const ids = createRedeliveryIds();
    const a = ids.assign(1, 'q\nAAA', false);
    const b = ids.assign(1, 'q\nAAA', false); // the same payload twice: two messages
    const c = ids.assign(1, 'q\nBBB', false);
    assert.equal(new Set([a, b, c]).size, 3);
    ids.settled(c);
    ids.lost(1);
    assert.notEqual(ids.assign(2, 'q\nBBB', true), c, 'c was acknowledged: a message like it is new');
    const again = [ids.assign(2, 'q\nAAA', true), ids.assign(2, 'q\nAAA', true)];
    assert.deepEqual(again.sort(), [a, b].sort(), 'identical payloads matched one to one');
    const third = ids.assign(2, 'q\nAAA', true);
    assert.ok(![a, b].includes(third), 'no id is handed out twice');
    assert.notEqual(ids.assign(2, 'q\nCCC', false), ids.assign(2, 'q\nCCC', false));
  });

  it('only messages of the lost connection become orphans', () => {
    const ids = createRedeliveryIds();
    const old = ids.assign(1, 'k', false);
    const current = ids.assign(2, 'k', false);
    ids.lost(1);
    assert.equal(ids.assign(2, 'k', true), old);
    ids.lost(2);
    assert.equal(ids.assign(3, 'k', true), current);
  });
});

describe('fireUntilEnded', () => {
  it('retries an event that could not be queued, with backoff, and shows the error', async () => {
    const clock = createManualClock(0);
    const health: unknown[] = [];
    const counted: FireResult[] = [];
    let calls = 0;
    const ctx = {
      clock,
      fire: async () => {
        if (++calls < 3) throw new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', 'Function not found: f');
        return 'succeeded' as const;
      },
      setHealthy: (_h: boolean, err?: unknown) => health.push(err),
      counted: (r: FireResult) => counted.push(r),
    } as unknown as TriggerContext;
    const event: TriggerEvent = { id: 'e', source: 's', type: 't', data: new Uint8Array() };
    const done = fireUntilEnded(ctx, event, new AbortController().signal);
    await turns();
    assert.equal(calls, 1);
    assert.ok(hasCode(health[0], 'NIMBUS_ERR_FUNCTION_NOT_FOUND'));
    clock.advance(500);
    await turns();
    assert.equal(calls, 2);
    clock.advance(999);
    await turns();
    assert.equal(calls, 2, 'the second wait is twice the first');
    clock.advance(1);
    assert.equal(await done, 'succeeded');
    assert.deepEqual(counted, ['succeeded']);
  });

  it('resolves undefined when stopped (the message must not be acknowledged)', async () => {
    const stop = new AbortController();
    const ctx = {
      clock: createManualClock(0),
      fire: (_e: TriggerEvent, signal: AbortSignal) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')))),
      setHealthy: () => {},
      counted: () => assert.fail('nothing to count'),
    } as unknown as TriggerContext;
    const done = fireUntilEnded(ctx, { id: 'e', source: 's', type: 't', data: new Uint8Array() }, stop.signal);
    stop.abort();
    assert.equal(await done, undefined);
  });
});

describe('checkConfig', () => {
  const rules: Record<string, FieldRule> = {
    url: { kind: 'string', schemes: ['amqp:'] },
    queue: { kind: 'string', required: true, example: '"orders"' },
    prefetch: { kind: 'integer', min: 1, max: 10 },
    declare: { kind: 'boolean' },
  };
  const message = (config: Record<string, unknown>) => {
    try {
      checkConfig('x', config, rules, {});
    } catch (err) {
      assert.ok(hasCode(err, 'NIMBUS_ERR_INVALID_REQUEST'));
      return (err as Error).message;
    }
    return 'accepted';
  };

  it('names the bad field', () => {
    assert.equal(message({}), 'config.queue: required (e.g. "orders")');
    assert.match(
      message({ queue: 'q', extra: 1 }),
      /^config: unknown field extra \(x takes url, queue, prefetch, declare\)/,
    );
    assert.match(message({ queue: 7 }), /^config\.queue: expected a non-empty string/);
    assert.match(message({ queue: 'q', prefetch: 0 }), /^config\.prefetch: expected a whole number from 1 to 10/);
    assert.match(message({ queue: 'q', prefetch: 1.5 }), /^config\.prefetch/);
    assert.match(message({ queue: 'q', declare: 'yes' }), /^config\.declare: expected true or false/);
    assert.match(message({ queue: 'q', url: 'http://h' }), /^config\.url: expected a amqp:\/\/ URL/);
    assert.match(message({ queue: 'q', url: 'not a url' }), /^config\.url/);
  });

  it('returns the defaults overlaid with the config', () => {
    assert.deepEqual(checkConfig('x', { queue: 'q' }, rules, { prefetch: 4, declare: true }), {
      queue: 'q',
      prefetch: 4,
      declare: true,
    });
  });
});

describe('redactUrl', () => {
  it('drops the user and password', () => {
    assert.equal(redactUrl('amqp://guest:secret@10.0.0.1:5672'), 'amqp://10.0.0.1:5672');
    assert.equal(redactUrl('redis://:pw@h:6379/2'), 'redis://h:6379/2');
    assert.equal(redactUrl('nonsense'), 'nonsense');
  });
});
