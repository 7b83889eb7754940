import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { NimbusError } from '../core/errors.js';
import { packageRoot } from '../core/package-root.js';

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/**
 * Serves the web dashboard (web/, built into dist/web by `npm run build`): `/` is its page and
 * `/web/FILE` its script and stylesheet. Files are read once and kept in memory; the dashboard
 * itself only calls the public API.
 */
export function registerDashboard(app: Hono, dir = join(packageRoot(), 'dist', 'web')): void {
  const cache = new Map<string, Buffer>();
  const file = (name: string): Buffer => {
    let body = cache.get(name);
    if (!body) {
      try {
        body = readFileSync(join(dir, name));
      } catch {
        throw new NimbusError('NIMBUS_ERR_ROUTE_NOT_FOUND', `Dashboard file ${name} is missing: run \`npm run build\``);
      }
      cache.set(name, body);
    }
    return body;
  };
  const send = (name: string, cacheControl: string) => {
    const ext = name.slice(name.lastIndexOf('.') + 1);
    return new Response(new Uint8Array(file(name)), {
      headers: { 'content-type': TYPES[ext] ?? 'application/octet-stream', 'cache-control': cacheControl },
    });
  };
  app.get('/', () => send('index.html', 'no-cache'));
  app.get('/web/:file{[a-z0-9.-]+\\.(js|css)}', (c) => send(c.req.param('file'), 'no-cache'));
}
