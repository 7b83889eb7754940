import { NimbusError } from '../core/errors.js';
import type { Trigger, TriggerFactory } from './types.js';

/**
 * `interval` — the template for a new source, and a useful one: invokes the function every
 * `seconds`. To add a source, copy this file and fill in the three parts:
 *
 * 1. `validate(config)`: check every field, throw NIMBUS_ERR_INVALID_REQUEST naming the bad one,
 *    return the config with its defaults (it is stored as given here).
 * 2. `start()`: begin receiving. Never throw for a broker that is down: call `ctx.setHealthy(false,
 *    err)` and retry with `superviseConnection` (backoff.ts), as nats.ts does.
 * 3. For each event, `await ctx.fire({ id, source, type, data })` — it resolves once the
 *    invocation ended (`succeeded`, `failed` or `dead`: retries and the DLQ are the platform's) —
 *    then `ctx.counted(result)` and acknowledge the message to the broker. Give `id` something
 *    stable per message (the broker's message id) so a redelivery does not run twice.
 *
 * Register the factory in src/cmd/serve.ts (the `factories` list).
 */
export const intervalTrigger: TriggerFactory = {
  type: 'interval',
  validate(config) {
    const { seconds, ...rest } = config;
    for (const key of Object.keys(rest))
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `config: unknown field ${key} (interval takes seconds)`);
    if (!Number.isInteger(seconds) || (seconds as number) < 1)
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'config.seconds: expected a whole number ≥ 1');
    return { seconds };
  },
  create(ctx): Trigger {
    const ms = (ctx.spec.config.seconds as number) * 1000;
    let cancel = () => {};
    let n = 0;
    const tick = () => {
      cancel = ctx.clock.setTimer(tick, ms);
      const time = new Date(ctx.clock.now());
      ctx
        .fire({
          id: `${ctx.spec.id}@${time.toISOString()}#${++n}`,
          source: `nimbus://triggers/${ctx.spec.id}`,
          type: 'io.nimbus.interval.tick',
          time,
          data: Buffer.from(JSON.stringify({ tick: n })),
          contentType: 'application/json',
        })
        .then(ctx.counted, (err) => {
          ctx.counted('failed');
          ctx.setHealthy(true, err);
        });
    };
    return {
      async start() {
        ctx.setHealthy(true);
        cancel = ctx.clock.setTimer(tick, ms);
      },
      async stop() {
        cancel();
      },
    };
  },
};
