import type { Hono } from 'hono';
import { NimbusError } from '../core/errors.js';
import type { TriggerManager } from '../triggers/manager.js';

/** `POST /api/v1/triggers`, `GET /api/v1/triggers[/ID]`, `DELETE /api/v1/triggers/ID`. */
export function registerTriggerRoutes(app: Hono, triggers: TriggerManager): void {
  app.get('/api/v1/triggers', async (c) => c.json({ triggers: await triggers.list() }));
  app.get('/api/v1/triggers/:id', async (c) => c.json(await triggers.get(c.req.param('id'))));
  app.post('/api/v1/triggers', async (c) => {
    let body: Record<string, unknown>;
    try {
      body = await c.req.json();
    } catch {
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'Body must be JSON: {"type", "function", "config", "id"?}');
    }
    const { id, type, function: fn, config, ...rest } = body ?? {};
    for (const key of Object.keys(rest)) throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `Unknown field: ${key}`);
    if (typeof type !== 'string' || typeof fn !== 'string')
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'type and function: required strings');
    if (id !== undefined && typeof id !== 'string')
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'id: expected a string');
    if (config !== undefined && (typeof config !== 'object' || config === null || Array.isArray(config)))
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'config: expected an object');
    const view = await triggers.add({ id, type, function: fn, config: config as Record<string, unknown> | undefined });
    return c.json(view, 201);
  });
  app.delete('/api/v1/triggers/:id', async (c) => {
    await triggers.remove(c.req.param('id'));
    return c.json({ deleted: c.req.param('id') });
  });
}
