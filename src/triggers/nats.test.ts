import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import type { Clock } from '../core/clock.js';
import { natsTrigger } from './nats.js';
import type { TriggerContext } from './types.js';

/** This process's open sockets to the local NATS server (the node runs triggers in-process). */
const natsSockets = () =>
  (process as unknown as { _getActiveHandles(): unknown[] })
    ._getActiveHandles()
    .filter((h): h is Socket => h instanceof Socket && h.remotePort === 4222 && !h.destroyed).length;

/** Timers run at once: the reconnect backoff is not what this test waits for. */
const hurriedClock: Clock = {
  now: () => Date.now(),
  setTimer(fn) {
    const t = setTimeout(fn, 5);
    return () => clearTimeout(t);
  },
};

describe('nats trigger (real NATS on 127.0.0.1:4222)', () => {
  it('a JetStream session that fails after connecting closes its connection before the next attempt', async () => {
    const before = natsSockets();
    const errors: string[] = [];
    let wake = () => {};
    const ctx: TriggerContext = {
      spec: { id: 'leak-check', type: 'nats', function: 'f', config: {}, createdAt: new Date().toISOString() },
      clock: hurriedClock,
      fire: async () => 'succeeded',
      setHealthy(healthy, error) {
        if (!healthy && error && !/connecting/.test(String(error))) errors.push(String(error));
        wake();
      },
      counted() {},
    };
    const config = natsTrigger.validate({ subject: 'nimbus.test.none', stream: `NIMBUS_MISSING_${process.pid}` });
    const trigger = natsTrigger.create({ ...ctx, spec: { ...ctx.spec, config } });
    await trigger.start();
    while (errors.length < 5) await new Promise<void>((resolve) => (wake = resolve));
    assert.match(errors[0]!, /stream not found/i);
    // Five failed sessions, at most the current one still open.
    assert.ok(natsSockets() - before <= 1, `${natsSockets() - before} sockets open after 5 failed sessions`);
    await trigger.stop();
    assert.equal(natsSockets(), before);
  });
});
