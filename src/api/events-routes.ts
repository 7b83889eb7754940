import type { Hono } from 'hono';
import { NimbusError } from '../core/errors.js';
import { isValidFunctionName } from '../core/types.js';
import type { AsyncInvocations } from '../events/types.js';
import type { JobState } from '../queue/types.js';

const STATES: JobState[] = ['queued', 'running', 'succeeded', 'failed', 'dead'];

/**
 * Async invocations, dead letters and per-function async settings:
 * `GET /api/v1/invocations/ID`, `GET /api/v1/functions/NAME/invocations`,
 * `GET /api/v1/functions/NAME/dlq`, `POST /api/v1/functions/NAME/dlq/redrive`,
 * `GET|PUT /api/v1/functions/NAME/async-config`.
 */
export function registerEventRoutes(app: Hono, events: AsyncInvocations): void {
  const name = (raw: string) => {
    if (!isValidFunctionName(raw))
      throw new NimbusError('NIMBUS_ERR_INVALID_NAME', `Invalid function name: ${JSON.stringify(raw)}`);
    return raw;
  };
  const limit = (raw: string | undefined) => {
    if (raw === undefined || raw === '') return 100;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 10_000)
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `limit: expected an integer from 1 to 10000, got ${raw}`);
    return n;
  };

  app.get('/api/v1/invocations/:id', async (c) => {
    const view = await events.get(c.req.param('id'));
    if (!view) throw new NimbusError('NIMBUS_ERR_INVOCATION_NOT_FOUND', `Invocation not found: ${c.req.param('id')}`);
    return c.json(view);
  });

  app.get('/api/v1/functions/:name/invocations', async (c) => {
    const fn = name(c.req.param('name'));
    const state = c.req.query('state') as JobState | undefined;
    if (state !== undefined && !STATES.includes(state))
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `state: expected one of ${STATES.join(', ')}, got ${state}`);
    return c.json({
      function: fn,
      counts: await events.counts(fn),
      invocations: await events.list(fn, { state, limit: limit(c.req.query('limit')) }),
    });
  });

  app.get('/api/v1/functions/:name/dlq', async (c) => {
    const fn = name(c.req.param('name'));
    return c.json({ function: fn, invocations: await events.deadLetters(fn, limit(c.req.query('limit'))) });
  });

  app.post('/api/v1/functions/:name/dlq/redrive', async (c) => {
    const fn = name(c.req.param('name'));
    const text = await c.req.text();
    let ids: string[] | undefined;
    if (text.trim() !== '') {
      let body: { ids?: unknown };
      try {
        body = JSON.parse(text);
      } catch {
        throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'Body must be JSON: {"ids": ["…"]} or empty for all');
      }
      if (body.ids !== undefined) {
        if (!Array.isArray(body.ids) || !body.ids.every((x) => typeof x === 'string'))
          throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'ids: expected an array of invocation ids');
        ids = body.ids;
      }
    }
    const redriven = await events.redrive(fn, ids);
    if (ids && ids.length > 0 && redriven.length === 0)
      throw new NimbusError(
        'NIMBUS_ERR_INVOCATION_NOT_FOUND',
        `No dead-lettered invocation of ${fn} with id ${ids.join(', ')}`,
      );
    return c.json({ function: fn, redriven });
  });

  app.get('/api/v1/functions/:name/async-config', async (c) => {
    const fn = name(c.req.param('name'));
    return c.json({ function: fn, config: await events.getConfig(fn) });
  });

  app.put('/api/v1/functions/:name/async-config', async (c) => {
    const fn = name(c.req.param('name'));
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'Body must be a JSON object');
    }
    return c.json({ function: fn, config: await events.setConfig(fn, body as Record<string, unknown>) });
  });
}
