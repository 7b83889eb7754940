import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { effectiveTraffic } from '../core/traffic.js';
import type { FunctionConfig, FunctionRecord, RevisionRecord, RolloutSettings } from '../core/types.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { createRolloutController, type RolloutController } from './controller.js';
import type { RolloutRecord } from './types.js';

const SETTINGS: RolloutSettings = {
  steps: [10, 50, 100],
  interval: 10,
  maxErrorRateIncrease: 5,
  maxP95Ratio: 1.5,
  p95FloorMs: 20,
  minRequests: 20,
};

const revision = (id: string, rollout?: RolloutSettings): RevisionRecord => ({
  id,
  function: 'f',
  number: Number(id.slice(1)),
  digest: 'd',
  identity: id,
  config: { name: 'f', ...(rollout ? { rollout } : {}) } as FunctionConfig,
  createdAt: '',
});

/** Drains the promise chains a timer started (the controller writes through async store calls). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('rollout controller', () => {
  let store: Store;
  let clock: ReturnType<typeof createManualClock>;
  let fn: FunctionRecord;
  let controller: RolloutController;

  const make = () =>
    createRolloutController({
      clock,
      bucket: store.bucket<RolloutRecord>('rollouts'),
      async update(_name, mutate) {
        const next = mutate(fn);
        if (next) fn = next;
        return fn;
      },
    });

  /** What FunctionsService does on a deploy: release, write, commit. */
  const deploy = async (rev: RevisionRecord, canary?: boolean) => {
    const release = await controller.release(fn, rev, canary);
    fn = { ...fn, latestRevision: rev.id, revisionCount: rev.number, traffic: release.traffic };
    if (release.latestReady) fn.latestReady = release.latestReady;
    else delete fn.latestReady;
    return release.commit();
  };

  /** `n` requests of a revision, `failing` of them 5xx, each taking `ms`. */
  const traffic = (rev: string, n: number, failing = 0, ms = 5) => {
    for (let i = 0; i < n; i++)
      controller.onInvocation({ function: 'f', revision: rev, status: i < failing ? 500 : 200, durationMs: ms });
  };
  const shares = () => Object.fromEntries(effectiveTraffic(fn).weights);
  const step = async () => {
    clock.advance(SETTINGS.interval * 1000);
    await settle();
  };

  beforeEach(() => {
    store = createSqliteStore({ path: ':memory:' });
    clock = createManualClock(1_700_000_000_000);
    fn = { name: 'f', createdAt: '', updatedAt: '', latestRevision: 'r1', revisionCount: 1 };
    controller = make();
  });
  afterEach(async () => {
    await controller.close();
    await store.close();
  });

  it('rolls back a canary that fails 30% of its requests, restoring the traffic from before', async () => {
    const started = await deploy(revision('r2', SETTINGS));
    assert.equal(started?.status, 'running');
    assert.deepEqual(shares(), { r1: 90, r2: 10 });
    traffic('r1', 180);
    traffic('r2', 20, 6);
    await step();
    const record = (await controller.get('f'))!;
    assert.equal(record.status, 'rolled-back');
    assert.deepEqual(shares(), { r1: 100 });
    assert.equal(fn.latestReady, 'r1', '`latest` keeps standing for the stable revision');
    const decision = record.events.at(-1)!;
    assert.equal(decision.action, 'rollback');
    assert.equal(decision.canary?.errorRate, 30);
    assert.match(decision.reason, /error rate 30% vs stable 0%/);
    assert.equal((await store.bucket<RolloutRecord>('rollouts').get('f'))?.value.status, 'rolled-back');
  });

  it('promotes a healthy canary step by step, ending with `latest` on the new revision', async () => {
    await deploy(revision('r2', SETTINGS));
    traffic('r1', 180, 1);
    traffic('r2', 20, 1);
    await step();
    assert.deepEqual(shares(), { r1: 50, r2: 50 });
    traffic('r1', 50);
    traffic('r2', 50);
    await step();
    const record = (await controller.get('f'))!;
    assert.equal(record.status, 'promoted');
    assert.deepEqual(fn.traffic, [{ latest: true, percent: 100 }]);
    assert.deepEqual(shares(), { r2: 100 });
    assert.deepEqual(
      record.events.map((e) => [e.action, e.percent]),
      [
        ['start', 10],
        ['step', 50],
        ['promote', 100],
      ],
    );
  });

  it('waits while a step has too few canary requests, then judges the whole longer window', async () => {
    await deploy(revision('r2', SETTINGS));
    traffic('r2', 3);
    await step();
    traffic('r2', 2);
    await step();
    let record = (await controller.get('f'))!;
    assert.equal(record.events.filter((e) => e.action === 'wait').length, 1, 'one wait event, kept up to date');
    assert.deepEqual([record.status, record.percent, record.events.at(-1)?.action], ['running', 10, 'wait']);
    assert.match(record.events.at(-1)!.reason, /5 of 20 canary requests/);
    assert.deepEqual(shares(), { r1: 90, r2: 10 });
    traffic('r2', 15);
    await step();
    record = (await controller.get('f'))!;
    assert.deepEqual([record.percent, record.events.at(-1)?.action], [50, 'step']);
    assert.equal(record.events.at(-1)!.canary?.requests, 20);
  });

  it('rolls back a canary whose p95 is far above the stable one', async () => {
    await deploy(revision('r2', SETTINGS));
    traffic('r1', 100, 0, 30);
    traffic('r2', 30, 0, 200);
    await step();
    const record = (await controller.get('f'))!;
    assert.equal(record.status, 'rolled-back');
    assert.match(record.events.at(-1)!.reason, /p95 200 ms vs stable 30 ms/);
  });

  it('starts a rollout for --canary with default steps, and none for --no-canary or a first revision', async () => {
    fn = { ...fn, latestRevision: 'r0', revisionCount: 0 };
    const first = await controller.release(undefined, revision('r1', SETTINGS), true);
    assert.equal(first.traffic, undefined);
    assert.equal(await first.commit(), undefined);
    const plain = await controller.release(fn, revision('r1', SETTINGS), false);
    assert.equal(await plain.commit(), undefined);
    const record = await deploy(revision('r2'), true);
    assert.deepEqual(record?.settings.steps, [5, 25, 50, 100]);
    assert.deepEqual(shares(), { r0: 95, r2: 5 });
  });

  it('a deploy during a rollout supersedes it and starts from the traffic before it', async () => {
    await deploy(revision('r2', SETTINGS));
    await deploy(revision('r3'));
    const record = (await controller.get('f'))!;
    assert.equal(record.canary, 'r2');
    assert.equal(record.status, 'aborted');
    assert.match(record.events.at(-1)!.reason, /superseded by r3/);
    assert.deepEqual(fn.traffic, [{ latest: true, percent: 100 }]);
    assert.deepEqual(shares(), { r3: 100 });
    // Its timer is gone: nothing changes at the next interval.
    await step();
    assert.deepEqual(shares(), { r3: 100 });
  });

  it('traffic set by hand interrupts the rollout; abort restores the traffic from before', async () => {
    await deploy(revision('r2', SETTINGS));
    // What TrafficService does under the function's lock: interrupt, then write the hand-set spec.
    controller.interrupt('f', 'traffic set by hand');
    fn.traffic = [{ revision: 'r1', percent: 100 }];
    await settle();
    assert.equal((await controller.get('f'))?.status, 'aborted');

    await deploy(revision('r3', SETTINGS));
    assert.deepEqual(shares(), { r1: 90, r3: 10 });
    const aborted = await controller.abort('f', 'aborted by hand');
    assert.equal(aborted?.status, 'aborted');
    assert.deepEqual(shares(), { r1: 100 });
    assert.equal(await controller.abort('f', 'again'), undefined);
  });

  it('resumes a running rollout after a restart, observing the current step afresh', async () => {
    await deploy(revision('r2', SETTINGS));
    await controller.close();
    controller = make();
    await controller.start();
    let record = (await controller.get('f'))!;
    assert.deepEqual([record.status, record.events.at(-1)?.action], ['running', 'resume']);
    traffic('r1', 100);
    traffic('r2', 20);
    await step();
    record = (await controller.get('f'))!;
    assert.deepEqual([record.percent, record.events.at(-1)?.action], [50, 'step']);
  });

  it('keeps the tags and pinned shares of the spec it started from', async () => {
    fn.traffic = [
      { revision: 'r1', percent: 100 },
      { revision: 'r1', percent: 0, tag: 'stable' },
    ];
    await deploy(revision('r2', SETTINGS));
    assert.deepEqual(fn.traffic, [
      { revision: 'r1', percent: 90 },
      { revision: 'r1', percent: 0, tag: 'stable' },
      { revision: 'r2', percent: 10 },
    ]);
    traffic('r2', 20);
    await step();
    traffic('r2', 20);
    await step();
    // Pinned before, so promotion pins the canary, keeping the tag.
    assert.deepEqual(fn.traffic, [
      { revision: 'r2', percent: 100 },
      { revision: 'r1', percent: 0, tag: 'stable' },
    ]);
  });
});

describe('step window', () => {
  it('counts an upgraded connection (101) as a request but not as a latency sample', async () => {
    const { StepWindow } = await import('./analysis.js');
    const w = new StepWindow();
    for (let i = 0; i < 19; i++) w.add(200, 10);
    w.add(101, 3_600_000);
    w.add(101, 3_600_000);
    w.add(502, 20);
    // An hour-long WebSocket is not an hour-slow revision.
    assert.deepEqual(w.stats(), { requests: 22, errors: 1, errorRate: 4.55, p95Ms: 10 });
  });
});
