import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, startTestNode, type TestNode, writeSource } from '../support/nimbus.js';
import { cli } from '../support/traffic.js';

const source = () => writeSource({ 'index.js': "export default { fetch: () => new Response('warm') };\n" });
const scaleOf = async (node: TestNode, name: string) =>
  (await node.json(`/api/v1/functions/${name}/scale`)).revisions[0] as any;
const liveInstances = async (node: TestNode, name: string) =>
  ((await node.json(`/api/v1/functions/${name}/instances`)).instances as any[]).filter((i) =>
    ['ready', 'busy', 'frozen', 'starting'].includes(i.state),
  );

/** Waits until the revision's autoscaler has decided `n` more times (once a second), so a state can be seen to last. */
async function decisions(node: TestNode, name: string, n: number): Promise<void> {
  const seen = new Set<string>();
  await eventually(
    async () => {
      const at = (await scaleOf(node, name))?.decidedAt;
      if (at) seen.add(at);
      return seen.size > n;
    },
    60_000,
    `${n} decisions of ${name}`,
  );
}

describe('scheduled warming and the autoscaler in the CLI (real node, real instances)', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(() => node.dispose());

  it('a window open now keeps its minimum warm with no traffic', async () => {
    // Opens every minute for 10 minutes: always open.
    const { status, body } = await node.deploy(source(), {
      name: 'warm-open',
      scale: { idleTimeout: 1, window: 6, schedule: [{ cron: '* * * * *', duration: '10m', min: 2 }] },
    });
    assert.equal(status, 201, JSON.stringify(body));
    await eventually(async () => (await liveInstances(node, 'warm-open')).length === 2, 60_000, 'two warm instances');
    await decisions(node, 'warm-open', 8);
    const view = await scaleOf(node, 'warm-open');
    assert.equal(view.min, 2);
    assert.equal(view.scheduled.min, 2);
    assert.ok(Date.parse(view.scheduled.until) > Date.now());
    assert.equal(view.desired, 2);
    const live = await liveInstances(node, 'warm-open');
    assert.equal(live.length, 2, 'past the idle timeout and a stable window, still 2');
    assert.ok(
      live.every((i) => i.requests === 0),
      'no request ever came',
    );
    const get = await cli(node.url, 'get', 'warm-open');
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /warming: +min 2 from "\* \* \* \* \*" \(UTC\) for 10m/);
    assert.match(get.stdout, /^r1 +2 +2 +0 +0 +no +.* +2 \(warming until \d\d:\d\d UTC\)/m);
  });

  it('a window closed now keeps none', async () => {
    const hour = (new Date().getUTCHours() + 12) % 24;
    const { status } = await node.deploy(source(), {
      name: 'warm-closed',
      scale: { schedule: [{ cron: `0 ${hour} * * *`, duration: '1h', min: 2 }] },
    });
    assert.equal(status, 201);
    await decisions(node, 'warm-closed', 3);
    const view = await scaleOf(node, 'warm-closed');
    assert.equal(view.min, 0);
    assert.equal(view.scheduled, undefined);
    assert.equal(view.desired, 0);
    assert.deepEqual(await liveInstances(node, 'warm-closed'), []);
  });

  it('refuses a bad schedule at deploy with a message naming the window and field', async () => {
    const bad = async (schedule: unknown, scale: Record<string, unknown> = {}) => {
      const { status, body } = await node.deploy(source(), { name: 'warm-bad', scale: { ...scale, schedule } });
      assert.equal(status, 400);
      assert.equal(body.error.code, 'NIMBUS_ERR_INVALID_MANIFEST');
      return body.error.message as string;
    };
    assert.match(
      await bad([{ cron: '0 25 * * *', duration: '1h', min: 1 }]),
      /scale\.schedule: \[0\]\.cron: invalid cron/,
    );
    assert.match(
      await bad([{ cron: '0 8 * * *', timezone: 'Europe/Pariss', duration: '1h', min: 1 }]),
      /scale\.schedule: \[0\]\.timezone: unknown time zone "Europe\/Pariss"/,
    );
    assert.match(await bad([{ cron: '0 8 * * *', duration: '1h' }]), /\[0\]\.min: expected an integer/);
    assert.match(
      await bad([{ cron: '0 8 * * *', duration: '1h', min: 5 }], { max: 3 }),
      /schedule\[0\]\.min \(5\) must not exceed max \(3\)/,
    );
  });

  it('deploy takes the autoscaler flags, and get shows them with the live view', async () => {
    const dir = source();
    const deployed = await cli(
      node.url,
      'deploy',
      dir,
      '--name',
      'flags',
      '--concurrency',
      '8',
      '--min',
      '1',
      '--initial',
      '2',
      '--max',
      '4',
      '--target',
      '5',
      '--target-utilization',
      '0.5',
      '--window',
      '2m',
      '--scale-down-delay',
      '30s',
      '--max-queue',
      '50',
    );
    assert.equal(deployed.code, 0, deployed.stderr);
    await eventually(async () => (await scaleOf(node, 'flags'))?.ready === 2, 60_000, 'initial 2 ready');
    const get = await cli(node.url, 'get', 'flags');
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /scale: +min 1, max 4, initial 2, idle timeout 300 s/);
    assert.match(
      get.stdout,
      /autoscaler: +concurrency, target 5 at 50%, window 120 s, scale-down delay 30 s, queue ≤ 50/,
    );
    assert.match(get.stdout, /^autoscaler:\nREVISION +DESIRED +READY/m);
    // Initial 2 starts in panic (as Knative does): 2 desired and ready, the queue bound is 50.
    assert.match(get.stdout, /^r1 +2 +2 +0 +0 +yes +.* 0\/50 +1\b/m);
    const bad = await cli(node.url, 'deploy', dir, '--name', 'flags', '--metric', 'cpu');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--metric/);
  });
});
