import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createManualClock } from '../core/clock.js';
import { runQueueConformance } from './conformance.js';
import { createSqliteQueue } from './sqlite-queue.js';

runQueueConformance('sqlite (:memory:)', (clock) => createSqliteQueue({ path: ':memory:', clock }));

const dir = mkdtempSync(join(tmpdir(), 'nimbus-queue-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
runQueueConformance('sqlite (file)', (clock) => createSqliteQueue({ path: join(dir, `q${++n}`, 'queue.db'), clock }));

describe('sqlite queue', () => {
  it('after a crash, jobs that were running are due again at once on reopen, their attempt counted', async () => {
    const path = join(dir, 'crash.db');
    const clock = createManualClock(5000);
    const first = createSqliteQueue({ path, clock });
    const a = await first.enqueue({ queue: 'f', data: {}, body: Buffer.from('x') });
    const b = await first.enqueue({ queue: 'f', data: {} });
    const [leased] = await first.lease('f', 1, 60_000);
    assert.equal(leased?.id, a.id);
    // No close(): the process "dies" holding the lease. A second handle stands in for the restart.
    const second = createSqliteQueue({ path, clock });
    const again = await second.lease('f', 10, 60_000);
    assert.deepEqual(
      again.map((j) => [j.id, j.attempts]),
      [
        [a.id, 2],
        [b.id, 1],
      ],
    );
    assert.equal(again[0]?.body.toString(), 'x');
    await first.close();
    await second.close();
  });
});
