import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readJson, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';

const hello = (word: string) => `export default { fetch: () => new Response('${word}') };\n`;

describe('deploying and versioning', () => {
  let node: TestNode;
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-deploy-'));
  before(async () => {
    node = await startTestNode({ dataDir });
  });
  after(async () => {
    await node.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('makes r1, skips identical redeploys, makes r2 on change and routes to the newest', async () => {
    const v1 = writeSource({ 'index.js': hello('one') });
    const first = await node.deploy(v1, { name: 'ver' });
    assert.equal(first.status, 201);
    assert.equal(first.body.revision, 'r1');
    assert.equal(first.body.url, `${node.url}/fn/ver/`);
    assert.equal(await (await node.call('/fn/ver/')).text(), 'one');

    const again = await node.deploy(writeSource({ 'index.js': hello('one') }), { name: 'ver' });
    assert.equal(again.status, 200);
    assert.deepEqual([again.body.revision, again.body.created], ['r1', false]);

    const config = await node.deploy(v1, { name: 'ver', memory: 512 });
    assert.deepEqual([config.status, config.body.revision], [201, 'r2'], 'a config change is a new revision');

    const v3 = await node.deploy(writeSource({ 'index.js': hello('three') }), { name: 'ver' });
    assert.equal(v3.body.revision, 'r3');
    assert.equal(await (await node.call('/fn/ver/')).text(), 'three');

    const details = await node.json('/api/v1/functions/ver');
    assert.deepEqual(
      details.revisions.map((r: any) => r.id),
      ['r1', 'r2', 'r3'],
    );
    assert.equal(details.function.latestRevision, 'r3');
    assert.equal(details.revisions[1].config.memory, 512);
  });

  it('rejects broken deploys with 400 and a message saying what and where, while the previous revision keeps serving', async () => {
    await node.deploy(writeSource({ 'index.js': hello('stable') }), { name: 'keep' });
    const cases: [Record<string, string>, Record<string, unknown>, string, RegExp][] = [
      [
        { 'index.ts': 'export default {\n  fetch() { return new Response("x") \n  oops here\n};\n' },
        { name: 'keep' },
        'NIMBUS_ERR_BUILD_FAILED',
        /index\.ts:\d+/,
      ],
      [
        { 'index.js': 'export const nothing = 1;\n' },
        { name: 'keep' },
        'NIMBUS_ERR_HANDLER_NOT_FOUND',
        /default|handler/,
      ],
      [
        { 'index.js': hello('x'), 'nimbus.yaml': 'name: keep\nmemory: lots\n' },
        {},
        'NIMBUS_ERR_INVALID_MANIFEST',
        /memory/,
      ],
      [
        { 'index.js': hello('x'), 'nimbus.yaml': 'name: [unclosed\n' },
        {},
        'NIMBUS_ERR_INVALID_MANIFEST',
        /nimbus\.yaml/,
      ],
      [{ 'index.js': hello('x') }, { name: 'Bad_Name!' }, 'NIMBUS_ERR_INVALID_NAME', /Bad_Name/],
      [{ 'index.js': hello('x') }, { name: 'keep', runtime: 'app' }, 'NIMBUS_ERR_INVALID_MANIFEST', /command/],
    ];
    for (const [files, overrides, code, message] of cases) {
      const { status, body } = await node.deploy(writeSource(files), overrides);
      assert.equal(status, 400, `${code}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, code);
      assert.match(body.error.message, message);
    }
    assert.equal(await (await node.call('/fn/keep/')).text(), 'stable');
    const details = await node.json('/api/v1/functions/keep');
    assert.equal(details.revisions.length, 1);
  });

  it('rejects an archive that is not a gzip tar, and bad query config', async () => {
    const garbage = await node.call('/api/v1/functions', { method: 'POST', body: 'not a tarball' });
    assert.equal(garbage.status, 400);
    assert.equal((await readJson(garbage)).error.code, 'NIMBUS_ERR_INVALID_ARCHIVE');
    const empty = await node.call('/api/v1/functions', { method: 'POST' });
    assert.equal((await readJson(empty)).error.code, 'NIMBUS_ERR_INVALID_ARCHIVE');
    const badConfig = await node.call('/api/v1/functions?config=%7Bnope', { method: 'POST', body: 'x' });
    assert.equal(badConfig.status, 400);
    assert.equal((await readJson(badConfig)).error.code, 'NIMBUS_ERR_INVALID_REQUEST');
  });

  it('lists, describes and deletes functions; unknown names are 404 with a JSON error', async () => {
    await node.deploy(writeSource({ 'index.js': hello('bye') }), { name: 'gone' });
    const { functions } = await node.json('/api/v1/functions');
    assert.ok(functions.some((f: any) => f.name === 'gone' && f.runtime === 'node' && f.url.endsWith('/fn/gone/')));
    assert.equal((await node.call('/fn/gone/')).status, 200);
    const del = await node.call('/api/v1/functions/gone', { method: 'DELETE' });
    assert.deepEqual(await readJson(del), { deleted: 'gone' });
    assert.equal((await node.call('/fn/gone/')).status, 404);
    const missing = await node.call('/api/v1/functions/gone');
    assert.equal(missing.status, 404);
    assert.equal((await readJson(missing)).error.code, 'NIMBUS_ERR_FUNCTION_NOT_FOUND');
    assert.equal((await node.call('/api/v1/functions/gone', { method: 'DELETE' })).status, 404);
    const route = await node.call('/api/v1/nothing-here');
    assert.equal(route.status, 404);
    assert.equal((await readJson(route)).error.code, 'NIMBUS_ERR_ROUTE_NOT_FOUND');
  });

  it('serves the OpenAPI document and a health check', async () => {
    const doc = await node.json('/api/v1/openapi.json');
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/api/v1/functions'].post);
    assert.deepEqual(await node.json('/healthz'), { status: 'ok' });
  });

  it('keeps functions, revisions and artifacts across a restart', async () => {
    await node.deploy(writeSource({ 'index.js': hello('durable') }), { name: 'durable' });
    await node.close();
    node = await startTestNode({ dataDir });
    assert.equal(await (await node.call('/fn/durable/')).text(), 'durable');
    assert.equal(await (await node.call('/fn/ver/')).text(), 'three');
    const details = await node.json('/api/v1/functions/ver');
    assert.equal(details.revisions.length, 3);
  });
});
