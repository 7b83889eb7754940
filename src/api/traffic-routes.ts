import type { Hono } from 'hono';
import { NimbusError } from '../core/errors.js';
import type { TrafficService } from './traffic-service.js';

/**
 * Revisions, traffic and rollouts of a function (docs/traffic.md):
 * `GET …/revisions[/ID]`, `GET|PUT …/traffic`, `POST …/rollback`, `GET|DELETE …/rollout`.
 */
export function registerTrafficRoutes(app: Hono, traffic: TrafficService): void {
  const base = '/api/v1/functions/:name';
  app.get(`${base}/revisions`, async (c) => {
    const name = c.req.param('name');
    return c.json({ function: name, revisions: await traffic.revisions(name) });
  });
  app.get(`${base}/revisions/:id`, async (c) => c.json(await traffic.revision(c.req.param('name'), c.req.param('id'))));
  app.get(`${base}/traffic`, async (c) => c.json(await traffic.traffic(c.req.param('name'))));
  app.put(`${base}/traffic`, async (c) => {
    const body = await c.req.json().catch(() => {
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'Body must be JSON: {"traffic": [{"revision", "percent"}]}');
    });
    return c.json(await traffic.setTraffic(c.req.param('name'), body));
  });
  app.post(`${base}/rollback`, async (c) => {
    const raw = await c.req.text();
    let revision: unknown;
    try {
      revision = raw.trim() === '' ? undefined : (JSON.parse(raw) as { revision?: unknown }).revision;
    } catch {
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'Body must be empty or JSON: {"revision": "r3"}');
    }
    if (revision !== undefined && typeof revision !== 'string')
      throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'revision: expected a revision id such as "r3"');
    return c.json(await traffic.rollback(c.req.param('name'), revision));
  });
  app.get(`${base}/rollout`, async (c) => c.json(await traffic.rollout(c.req.param('name'))));
  app.delete(`${base}/rollout`, async (c) => c.json(await traffic.abortRollout(c.req.param('name'))));
}
