import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openApiDocument } from './openapi.js';

// Kept in step like docs/errors.md: a route registered on the API app must be in the document.
const here = fileURLToPath(new URL('.', import.meta.url));
const ROUTE = /app\.(get|post|put|delete|patch)\('(\/(?:api\/v1\/|metrics|healthz)[^']*)'/g;

describe('OpenAPI document', () => {
  it('describes every API route and method the app registers', () => {
    const missing: string[] = [];
    let seen = 0;
    for (const file of readdirSync(here)) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
      for (const [, method, path] of readFileSync(join(here, file), 'utf8').matchAll(ROUTE)) {
        seen++;
        const documented = path!.replace(/:([A-Za-z]+)/g, '{$1}');
        const entry = (openApiDocument.paths as Record<string, Record<string, unknown>>)[documented];
        if (!entry?.[method!]) missing.push(`${method!.toUpperCase()} ${documented} (${file})`);
      }
    }
    assert.ok(seen > 20, `found the routes (${seen})`);
    assert.deepEqual(missing, []);
  });
});
