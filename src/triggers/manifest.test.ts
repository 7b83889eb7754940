import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { hasCode } from '../core/errors.js';
import type { AsyncInvocations } from '../events/types.js';
import { createSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { intervalTrigger } from './interval.js';
import { createTriggerManager, type TriggerManager } from './manager.js';
import { manifestTriggerId } from './manifest-plan.js';
import type { DeclaredTrigger, TriggerFactory, TriggerSpec } from './types.js';

/** interval, recording which trigger ids were started, stopped and removed. */
function recording(log: string[]): TriggerFactory {
  return {
    ...intervalTrigger,
    create: (ctx) => ({
      start: async () => void log.push(`start ${ctx.spec.id}`),
      stop: async () => void log.push(`stop ${ctx.spec.id}`),
      remove: async () => void log.push(`remove ${ctx.spec.id}`),
    }),
  };
}

const declare = (entries: { name?: string; type?: string; [field: string]: unknown }[]): DeclaredTrigger[] =>
  entries.map(({ name, type = 'interval', ...config }, index) => ({
    ...(name ? { name } : {}),
    type,
    config,
    index,
    label: 'nimbus.yaml',
    line: () => 3 + index,
  }));

describe('manifest triggers (plan / reconcile / removeFunction)', () => {
  let store: Store;
  let manager: TriggerManager;
  let log: string[];
  beforeEach(() => {
    store = createSqliteStore({ path: ':memory:' });
    log = [];
    manager = createTriggerManager({
      bucket: store.bucket<TriggerSpec>('triggers'),
      invocations: {} as AsyncInvocations, // the recording triggers never fire
      clock: createManualClock(Date.parse('2026-01-01T00:00:00Z')),
      factories: [recording(log)],
    });
  });
  afterEach(async () => {
    await manager.close();
    await store.close();
  });

  const apply = async (fn: string, entries: Parameters<typeof declare>[0]) =>
    manager.reconcile(await manager.plan(fn, declare(entries)));

  it('creates, keeps, updates in place (named), replaces (unnamed) and deletes; never touches API triggers', async () => {
    await manager.add({ id: 'by-hand', type: 'interval', function: 'f', config: { seconds: 5 } });
    const first = await apply('f', [{ name: 'tick', seconds: 1 }, { seconds: 60 }]);
    const unnamed = manifestTriggerId('f', { type: 'interval' }, { seconds: 60 });
    assert.deepEqual(first, { created: ['f-tick', unnamed], updated: [], deleted: [] });
    assert.deepEqual(await apply('f', [{ name: 'tick', seconds: 1 }, { seconds: 60 }]), {
      created: [],
      updated: [],
      deleted: [],
    });
    log.length = 0;
    const changed = await apply('f', [{ name: 'tick', seconds: 2 }, { seconds: 61 }]);
    const replaced = manifestTriggerId('f', { type: 'interval' }, { seconds: 61 });
    assert.deepEqual(changed, { created: [replaced], updated: ['f-tick'], deleted: [unnamed] });
    // An update stops and starts (broker state kept); a deletion also removes.
    assert.deepEqual(
      log.sort(),
      [`remove ${unnamed}`, `start ${replaced}`, 'start f-tick', `stop ${unnamed}`, 'stop f-tick'].sort(),
    );
    const tick = await manager.get('f-tick');
    assert.deepEqual([tick.origin, tick.name, tick.config], ['manifest', 'tick', { seconds: 2 }]);
    assert.ok(tick.updatedAt);
    assert.deepEqual(await apply('f', []), { created: [], updated: [], deleted: [replaced, 'f-tick'].sort() });
    assert.deepEqual(
      (await manager.list()).map((t) => [t.id, t.origin]),
      [['by-hand', 'api']],
    );
  });

  it('keeps functions apart, and removeFunction deletes every trigger of one function only', async () => {
    await apply('f', [{ name: 'a', seconds: 1 }]);
    await apply('g', [{ name: 'a', seconds: 1 }]);
    await manager.add({ id: 'g-extra', type: 'interval', function: 'g', config: { seconds: 5 } });
    assert.deepEqual((await apply('f', [])).deleted, ['f-a']);
    await apply('f', [{ name: 'a', seconds: 1 }]);
    assert.deepEqual((await manager.removeFunction('g')).sort(), ['g-a', 'g-extra']);
    assert.deepEqual(
      (await manager.list()).map((t) => t.id),
      ['f-a'],
    );
  });

  it('refuses bad entries with the file, line and field path, and ids held by API triggers', async () => {
    const refused = async (entries: Parameters<typeof declare>[0], message: RegExp) =>
      assert.rejects(manager.plan('f', declare(entries)), (err: Error) => {
        assert.ok(hasCode(err, 'NIMBUS_ERR_INVALID_MANIFEST'), err.message);
        assert.match(err.message, message);
        return true;
      });
    await refused([{ seconds: 1 }, { seconds: 0 }], /^nimbus\.yaml:4: triggers\[1\]\.seconds: expected a whole number/);
    await refused([{ type: 'smoke-signal' }], /^nimbus\.yaml:3: triggers\[0\]\.type: expected one of interval/);
    await refused([{ seconds: 1, colour: 'blue' }], /^nimbus\.yaml:3: triggers\[0\]: unknown field colour/);
    await manager.add({ id: 'f-mine', type: 'interval', function: 'f', config: { seconds: 5 } });
    await refused([{ name: 'mine', seconds: 1 }], /triggers\[0\]\.name: the trigger id f-mine is taken/);
  });

  it('cuts long ids to 63 characters, still distinct', () => {
    const fn = 'f'.repeat(60);
    const a = manifestTriggerId(fn, { name: 'first-of-two', type: 'cron' }, {});
    const b = manifestTriggerId(fn, { name: 'second-of-two', type: 'cron' }, {});
    assert.ok(a.length <= 63 && b.length <= 63);
    assert.notEqual(a, b);
    assert.match(a, /^[a-z0-9][a-z0-9-]*$/);
  });
});
