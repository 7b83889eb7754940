import { type Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { NimbusError, toNimbusError } from '../core/errors.js';
import { effectiveTraffic } from '../core/traffic.js';
import type { FunctionConfig, FunctionRecord, RevisionRecord } from '../core/types.js';
import type { AsyncInvocations } from '../events/types.js';
import type { ScaleView } from '../instances/scaling.js';
import type { InstanceInfo } from '../instances/types.js';
import { registerDashboard } from '../observe/dashboard.js';
import { createLiveFilter, type LogRecord, type LogStore } from '../observe/log-store.js';
import { type UsageMeter, usageCsv } from '../observe/usage.js';
import type { TriggerManager } from '../triggers/manager.js';
import { registerEventRoutes } from './events-routes.js';
import type { FunctionsService } from './functions-service.js';
import { logFilterParams } from './log-params.js';
import { openApiDocument } from './openapi.js';
import { registerTrafficRoutes } from './traffic-routes.js';
import type { TrafficService } from './traffic-service.js';
import { registerTriggerRoutes } from './trigger-routes.js';

export interface ApiOptions {
  service: FunctionsService;
  logs: LogStore;
  /** Largest deploy upload. Default 100 MB. */
  maxUploadBytes?: number;
  /** False while the node drains for shutdown. */
  healthy(): boolean;
  /** Serves `/api/v1/usage`. */
  usage?: UsageMeter;
  /** Serves `/metrics` in the Prometheus text format. */
  metrics?: { render(): Promise<string>; contentType: string };
  /** Serves async invocations, dead letters and async settings (`/api/v1/invocations`, `…/dlq`). */
  events?: AsyncInvocations;
  /** Serves `/api/v1/triggers`. */
  triggers?: TriggerManager;
  /** Serves revisions, traffic and rollouts (`/api/v1/functions/NAME/{revisions,traffic,rollback,rollout}`). */
  traffic?: TrafficService;
  /** How instances run on this node (e.g. `{ sandboxed, warnings }`), shown beside instance lists. */
  runtimeInfo?(): Record<string, unknown>;
  /** Whether a revision's cold starts restore a CRIU image (docs/criu.md); undefined when it did not ask. */
  checkpointStatus?(revision: RevisionRecord): Promise<unknown>;
  /** Serves `/api/v1/functions/NAME/scale`: the autoscaler's view of each live revision. */
  scale?(name: string): ScaleView[];
}

/** The control-plane REST API (`/api/v1`) and `/healthz`, as a Hono app. */
export function createApi(options: ApiOptions): Hono {
  const { service, logs } = options;
  const maxUpload = options.maxUploadBytes ?? 100 * 1024 * 1024;
  const app = new Hono();
  const withCheckpoint = async (r: RevisionRecord) => {
    const checkpoint = await options.checkpointStatus?.(r);
    return checkpoint ? { checkpoint } : {};
  };

  app.onError((err, c) => {
    const error = toNimbusError(err);
    if (!error.userFault) console.error(err);
    return c.json(error.toJSON(), error.status as 400);
  });
  app.notFound((c) => {
    const e = new NimbusError('NIMBUS_ERR_ROUTE_NOT_FOUND', `No route for ${c.req.method} ${c.req.path}`);
    return c.json(e.toJSON(), 404);
  });

  app.get('/healthz', (c) => (options.healthy() ? c.json({ status: 'ok' }) : c.json({ status: 'draining' }, 503)));
  app.get('/api/v1/openapi.json', (c) => c.json(openApiDocument));
  const { metrics } = options;
  if (metrics)
    app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'content-type': metrics.contentType }));

  app.get('/api/v1/functions', async (c) => {
    const all = await service.list();
    return c.json({
      functions: all.map(({ record, config }) => summary(c, record, config, service.instancesOf(record.name))),
    });
  });

  app.post('/api/v1/functions', async (c) => {
    const archive = await readUpload(c, maxUpload);
    const overrides = parseOverrides(c.req.query('config'));
    const canary = c.req.query('canary');
    const { created, revision, rollout, percent, triggers } = await service.deploy({
      archive,
      overrides,
      nameHint: c.req.query('name'),
      canary: canary === undefined || canary === '' ? undefined : canary === 'true',
    });
    return c.json(
      {
        function: revision.function,
        revision: revision.id,
        created,
        digest: revision.digest,
        url: functionUrl(c, revision.function),
        ...(revision.snapshot ? { snapshot: revision.snapshot } : {}),
        ...(await withCheckpoint(revision)),
        ...(percent !== undefined ? { percent } : {}),
        ...(rollout ? { rollout } : {}),
        ...(triggers ? { triggers } : {}),
      },
      created ? 201 : 200,
    );
  });

  app.get('/api/v1/functions/:name', async (c) => {
    const d = await service.get(c.req.param('name'));
    const revisions = await Promise.all(
      d.revisions.map(async (r) => ({
        id: r.id,
        number: r.number,
        digest: r.digest,
        createdAt: r.createdAt,
        config: r.config,
        ...(r.snapshot ? { snapshot: r.snapshot } : {}),
        ...(await withCheckpoint(r)),
      })),
    );
    return c.json({
      function: summary(c, d.function, d.config, d.instances),
      config: d.config,
      revisions,
      instances: d.instances,
      ...(d.startError ? { startError: d.startError } : {}),
      ...options.runtimeInfo?.(),
    });
  });

  const { usage } = options;
  if (usage) {
    app.get('/api/v1/usage', (c) => {
      const rows = usage.query({
        function: c.req.query('function') || undefined,
        since: timeParam(c.req.query('since')),
      });
      const format = c.req.query('format') ?? 'json';
      if (format === 'csv') return c.body(usageCsv(rows), 200, { 'content-type': 'text/csv; charset=utf-8' });
      if (format !== 'json')
        throw new NimbusError(
          'NIMBUS_ERR_INVALID_REQUEST',
          `format: expected json or csv, got ${JSON.stringify(format)}`,
        );
      return c.json({ usage: rows });
    });
  }

  const { scale } = options;
  if (scale) {
    app.get('/api/v1/functions/:name/scale', async (c) => {
      const name = c.req.param('name');
      await service.instanceWindow(name); // 404 for an unknown function
      return c.json({ function: name, revisions: scale(name) });
    });
  }

  app.get('/api/v1/functions/:name/instances', async (c) => {
    const name = c.req.param('name');
    return c.json({ function: name, ...(await service.instanceWindow(name)), ...options.runtimeInfo?.() });
  });

  app.delete('/api/v1/functions/:name', async (c) => {
    const name = c.req.param('name');
    await service.remove(name);
    return c.json({ deleted: name });
  });

  app.get('/api/v1/functions/:name/logs', async (c) => {
    const name = c.req.param('name');
    await service.get(name);
    const query = {
      function: name,
      limit: intParam(c.req.query('limit'), 'limit', 1, 1000) ?? 100,
      since: timeParam(c.req.query('since')),
      ...logFilterParams(c),
    };
    const view = (r: LogRecord) => ({ ...r, time: new Date(r.time).toISOString() });
    if (c.req.query('follow') !== 'true') return c.json({ logs: (await logs.query(query)).map(view) });
    return streamSSE(c, async (stream) => {
      // Subscribe before reading history so no line falls between the two.
      const queued: LogRecord[] = [];
      let wake = () => {};
      const live = createLiveFilter(query);
      const unsubscribe = logs.follow(name, (r) => {
        const out = live(r);
        if (out.length === 0) return;
        queued.push(...out);
        wake();
      });
      stream.onAbort(() => {
        unsubscribe();
        wake();
      });
      for (const r of await logs.query(query)) await stream.writeSSE({ data: JSON.stringify(view(r)) });
      while (!stream.aborted) {
        while (queued.length > 0) await stream.writeSSE({ data: JSON.stringify(view(queued.shift()!)) });
        await new Promise<void>((resolve) => {
          wake = resolve;
          // A comment line every 15 s keeps proxies from closing an idle stream.
          setTimeout(resolve, 15_000).unref();
        });
        if (queued.length === 0 && !stream.aborted) await stream.write(': keep-alive\n\n');
      }
      unsubscribe();
    });
  });

  if (options.events) registerEventRoutes(app, options.events);
  if (options.triggers) registerTriggerRoutes(app, options.triggers);
  if (options.traffic) registerTrafficRoutes(app, options.traffic);
  registerDashboard(app);
  return app;
}

function summary(c: Context, record: FunctionRecord, config: FunctionConfig, instances: InstanceInfo[]) {
  const count = (state: string) => instances.filter((i) => i.state === state).length;
  return {
    name: record.name,
    latestRevision: record.latestRevision,
    revisionCount: record.revisionCount,
    // Who gets the traffic now (docs/traffic.md): revision and percent, `latest` resolved.
    traffic: [...effectiveTraffic(record).weights].map(([revision, percent]) => ({ revision, percent })),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    runtime: config.runtime,
    url: functionUrl(c, record.name),
    instances: {
      // Ready to serve: an instance answering requests shows `busy`, an idle one suspended by the
      // freezer `frozen` (thawed on the next request): both are warm, not scaled to zero.
      ready: count('ready') + count('busy') + count('frozen'),
      starting: count('starting'),
      busy: instances.filter((i) => i.inFlight > 0).length,
    },
  };
}

function functionUrl(c: Context, name: string): string {
  return `http://${c.req.header('host') ?? 'localhost'}/fn/${name}/`;
}

async function readUpload(c: Context, max: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length') ?? 0);
  const tooLarge = () =>
    new NimbusError('NIMBUS_ERR_PAYLOAD_TOO_LARGE', `Upload is larger than the limit of ${max} bytes`);
  if (declared > max) throw tooLarge();
  const body = c.req.raw.body;
  if (!body)
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_ARCHIVE',
      'The request has no body: send a gzip-compressed tar of the source directory',
    );
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > max) throw tooLarge();
    chunks.push(chunk);
  }
  if (size === 0)
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_ARCHIVE',
      'The request body is empty: send a gzip-compressed tar of the source directory',
    );
  return Buffer.concat(chunks);
}

function parseOverrides(raw: string | undefined): Record<string, unknown> {
  if (!raw) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_REQUEST',
      `Query parameter config is not valid JSON: ${(err as Error).message}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new NimbusError('NIMBUS_ERR_INVALID_REQUEST', 'Query parameter config must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function intParam(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_REQUEST',
      `${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  return n;
}

function timeParam(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const t = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (Number.isNaN(t))
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_REQUEST',
      `since: expected an ISO time or epoch milliseconds, got ${JSON.stringify(raw)}`,
    );
  return t;
}
