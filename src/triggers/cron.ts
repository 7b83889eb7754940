import { Cron } from 'croner';
import { NimbusError } from '../core/errors.js';
import type { Trigger, TriggerFactory } from './types.js';

/**
 * `cron`: invokes the function on a schedule. Config: `schedule` (5 or 6 fields, croner syntax,
 * e.g. `*\/5 * * * *`), `timezone` (IANA name, default UTC), `data` (optional body, a string).
 * croner computes the next time; the timer runs on the injected clock, so tests step through days.
 * A tick's event id is the trigger id plus the scheduled time: a tick runs once even if the node
 * restarts while it runs. Ticks missed while the node was down are not replayed.
 */
export const cronTrigger: TriggerFactory = {
  type: 'cron',
  validate(config) {
    const bad = (why: string) => new NimbusError('NIMBUS_ERR_INVALID_REQUEST', why);
    const { schedule, timezone, data, ...rest } = config;
    for (const key of Object.keys(rest))
      throw bad(`config: unknown field ${key} (cron takes schedule, timezone, data)`);
    if (typeof schedule !== 'string') throw bad('config.schedule: expected a cron expression such as "*/5 * * * *"');
    if (timezone !== undefined && typeof timezone !== 'string') throw bad('config.timezone: expected an IANA name');
    if (data !== undefined && typeof data !== 'string') throw bad('config.data: expected a string');
    try {
      new Cron(schedule, { timezone: timezone as string | undefined, paused: true }).nextRun();
    } catch (err) {
      throw bad(`config: invalid schedule or timezone: ${(err as Error).message}`);
    }
    return { schedule, ...(timezone ? { timezone } : {}), ...(data !== undefined ? { data } : {}) };
  },
  create(ctx): Trigger {
    const { schedule, timezone, data } = ctx.spec.config as { schedule: string; timezone?: string; data?: string };
    const cron = new Cron(schedule, { timezone, paused: true });
    let cancel = () => {};
    let stopped = false;

    const scheduleNext = (after: number) => {
      const next = cron.nextRun(new Date(after));
      if (!next || stopped) return;
      const at = next.getTime();
      cancel = ctx.clock.setTimer(() => tick(at), Math.max(0, at - ctx.clock.now()));
    };
    const tick = (at: number) => {
      scheduleNext(at);
      const time = new Date(at);
      ctx
        .fire({
          id: `${ctx.spec.id}@${time.toISOString()}`,
          source: `nimbus://triggers/${ctx.spec.id}`,
          type: 'io.nimbus.cron.tick',
          time,
          data: Buffer.from(data ?? JSON.stringify({ schedule, timezone: timezone ?? 'UTC', scheduledTime: time })),
          contentType: data !== undefined ? 'text/plain' : 'application/json',
        })
        .then(ctx.counted, (err) => {
          ctx.counted('failed');
          ctx.setHealthy(true, err);
        });
    };

    return {
      async start() {
        ctx.setHealthy(true);
        scheduleNext(ctx.clock.now());
      },
      async stop() {
        stopped = true;
        cancel();
      },
    };
  },
};
