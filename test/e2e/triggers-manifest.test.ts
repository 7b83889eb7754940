import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';
import { cli } from '../support/traffic.js';

const code = `export default { fetch: async (r) => Response.json({ type: r.headers.get('ce-type'), id: r.headers.get('ce-id') }) };`;
const source = (manifest: string) => writeSource({ 'index.js': code, 'nimbus.yaml': manifest });

const withTriggers = source(`name: ticker
triggers:
  - name: tick
    type: cron
    schedule: "* * * * * *"
  - name: nightly
    type: cron
    schedule: "0 3 * * *"
    timezone: Europe/Paris
  - type: interval
    seconds: 3600
`);
const withoutTriggers = source('name: ticker\n');

describe('triggers declared in the manifest', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(() => node.dispose());

  const trigger = (id: string) => node.call(`/api/v1/triggers/${id}`);
  const ids = async () => ((await node.json('/api/v1/triggers')).triggers as any[]).map((t) => t.id).sort();

  it('are created by the deploy, owned by the manifest, and fire', async () => {
    const { status, body } = await node.deploy(withTriggers);
    assert.equal(status, 201, JSON.stringify(body));
    assert.equal(body.triggers.created.length, 3, JSON.stringify(body.triggers));
    assert.deepEqual(body.triggers.created.slice(0, 2), ['ticker-tick', 'ticker-nightly']);
    assert.match(body.triggers.created[2], /^ticker-interval-[0-9a-f]{8}$/);
    const nightly = await node.json('/api/v1/triggers/ticker-nightly');
    assert.deepEqual(
      [nightly.origin, nightly.name, nightly.type, nightly.function, nightly.config],
      ['manifest', 'nightly', 'cron', 'ticker', { schedule: '0 3 * * *', timezone: 'Europe/Paris' }],
    );
    const fired = await eventually(
      async () => {
        const { invocations } = await node.json('/api/v1/functions/ticker/invocations?state=succeeded');
        return invocations.find((v: any) => JSON.parse(v.result.body).type === 'io.nimbus.cron.tick');
      },
      60_000,
      'a cron tick of the manifest trigger',
    );
    assert.match(JSON.parse(fired.result.body).id, /^ticker-tick@/);
  });

  it('an unchanged redeploy changes nothing; a changed named trigger is updated in place (no new revision)', async () => {
    const same = await node.deploy(withTriggers);
    assert.equal(same.status, 200);
    assert.equal(same.body.triggers, undefined);
    const changed = source(`name: ticker
triggers:
  - name: tick
    type: cron
    schedule: "* * * * * *"
  - name: nightly
    type: cron
    schedule: "0 4 * * *"
    timezone: Europe/Paris
  - type: interval
    seconds: 3600
`);
    // Triggers belong to the function, not to a revision: the code and config are unchanged, so no revision is made.
    const { status, body } = await node.deploy(changed);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.triggers, { created: [], updated: ['ticker-nightly'], deleted: [] });
    const nightly = await node.json('/api/v1/triggers/ticker-nightly');
    assert.equal(nightly.config.schedule, '0 4 * * *');
    assert.ok(nightly.updatedAt);
  });

  it('a redeploy without them deletes them, and leaves a trigger made through the API alone', async () => {
    const res = await node.call('/api/v1/triggers', {
      method: 'POST',
      body: JSON.stringify({ id: 'by-hand', type: 'interval', function: 'ticker', config: { seconds: 3600 } }),
    });
    assert.equal(res.status, 201);
    assert.equal(((await res.json()) as any).origin, 'api');
    const { status, body } = await node.deploy(withoutTriggers);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.triggers.deleted.length, 3);
    assert.equal((await trigger('ticker-tick')).status, 404);
    assert.deepEqual(await ids(), ['by-hand']);
    // Through the CLI: the deploy says what it changed, `triggers ls` shows who owns each.
    const deployed = await cli(node.url, 'deploy', withTriggers);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stdout, /^triggers: created ticker-tick, ticker-nightly, ticker-interval-[0-9a-f]{8}$/m);
    const listed = await cli(node.url, 'triggers', 'ls');
    assert.match(listed.stdout, /by-hand\s+interval\s+ticker\s+api\s/);
    assert.match(listed.stdout, /ticker-nightly\s+cron\s+ticker\s+manifest\s/);
    assert.equal((await trigger('by-hand')).status, 200, 'the API trigger survived both redeploys');
  });

  it('an invalid trigger fails the deploy with a 400 naming the file, line and field; nothing is recorded', async () => {
    const before = (await node.json('/api/v1/functions/ticker')).revisions.length;
    const triggersBefore = await ids();
    const cases: [string, RegExp][] = [
      [
        'name: ticker\ntriggers:\n  - type: cron\n    schedule: "0 3 * * *"\n  - type: mqtt\n    url: mqtt://127.0.0.1:1883\n',
        /^nimbus\.yaml:5: triggers\[1\]\.topic: required/,
      ],
      [
        'name: ticker\ntriggers:\n  - type: cron\n    schedule: "0 3 * * *"\n    timezone: 7\n',
        /^nimbus\.yaml:5: triggers\[0\]\.timezone: /,
      ],
      [
        'name: ticker\ntriggers:\n  - type: carrier-pigeon\n',
        /^nimbus\.yaml:3: triggers\[0\]\.type: expected one of cron/,
      ],
      [
        'name: ticker\ntriggers:\n  - type: interval\n    seconds: 1\n    colour: blue\n',
        /^nimbus\.yaml:3: triggers\[0\]: unknown field colour/,
      ],
      [
        'name: ticker\ntriggers:\n  - name: Bad_Name\n    type: interval\n    seconds: 5\n',
        /triggers\[0\]\.name: expected 1-40 lowercase/,
      ],
      ['name: ticker\ntriggers: {type: cron}\n', /^nimbus\.yaml:2: triggers: expected a list/],
    ];
    for (const [manifest, message] of cases) {
      const { status, body } = await node.deploy(source(manifest));
      assert.equal(status, 400, manifest);
      assert.equal(body.error.code, 'NIMBUS_ERR_INVALID_MANIFEST');
      assert.match(body.error.message, message);
    }
    const json = writeSource({
      'index.js': code,
      'nimbus.json': JSON.stringify({ name: 'ticker', triggers: [{ type: 'interval', seconds: 0 }] }),
    });
    const bad = await node.deploy(json);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^nimbus\.json: triggers\[0\]\.seconds: expected a whole number/);
    assert.equal((await node.json('/api/v1/functions/ticker')).revisions.length, before);
    assert.deepEqual(await ids(), triggersBefore);
  });

  it('refuses a manifest trigger whose id an API trigger has', async () => {
    const res = await node.call('/api/v1/triggers', {
      method: 'POST',
      body: JSON.stringify({ id: 'ticker-mine', type: 'interval', function: 'ticker', config: { seconds: 3600 } }),
    });
    assert.equal(res.status, 201);
    const { status, body } = await node.deploy(
      source('name: ticker\ntriggers:\n  - name: mine\n    type: interval\n    seconds: 60\n'),
    );
    assert.equal(status, 400);
    assert.match(
      body.error.message,
      /triggers\[0\]\.name: the trigger id ticker-mine is taken by a trigger made through the API/,
    );
  });

  it('deleting the function deletes all its triggers, whoever made them', async () => {
    assert.ok((await ids()).length >= 4);
    const res = await node.call('/api/v1/functions/ticker', { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.deepEqual(await ids(), []);
  });
});
