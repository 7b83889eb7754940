import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NimbusError } from './errors.js';
import { effectiveTraffic, pickWeighted, referencedRevisions, scalePercents, validateTraffic } from './traffic.js';
import type { FunctionRecord } from './types.js';

const fn = (over: Partial<FunctionRecord> = {}): FunctionRecord => ({
  name: 'f',
  createdAt: '',
  updatedAt: '',
  latestRevision: 'r4',
  revisionCount: 4,
  ...over,
});

describe('weighted picker', () => {
  it('splits [0, 1) into cumulative bands: 90/10 sends below 0.9 to the first', () => {
    assert.equal(pickWeighted([90, 10], 0), 0);
    assert.equal(pickWeighted([90, 10], 0.8999), 0);
    assert.equal(pickWeighted([90, 10], 0.9), 1);
    assert.equal(pickWeighted([90, 10], 0.99999), 1);
    assert.equal(pickWeighted([100], 0.5), 0);
  });

  it('over an even sweep of random values, each target gets exactly its share', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 1000; i++) counts[pickWeighted([50, 30, 20], i / 1000)]!++;
    assert.deepEqual(counts, [500, 300, 200]);
  });
});

describe('effective traffic', () => {
  it('defaults to everything for the newest revision, and `latest` follows latestReady when set', () => {
    assert.deepEqual([...effectiveTraffic(fn()).weights], [['r4', 100]]);
    assert.deepEqual([...effectiveTraffic(fn({ latestReady: 'r3' })).weights], [['r3', 100]]);
  });

  it('merges targets naming the same revision, and collects tags (also on 0% targets)', () => {
    const record = fn({
      traffic: [
        { revision: 'r4', percent: 60 },
        { latest: true, percent: 40, tag: 'current' },
        { revision: 'r2', percent: 0, tag: 'old' },
      ],
    });
    const { weights, tags } = effectiveTraffic(record);
    assert.deepEqual([...weights], [['r4', 100]]);
    assert.deepEqual(
      [...tags],
      [
        ['current', 'r4'],
        ['old', 'r2'],
      ],
    );
    assert.deepEqual([...referencedRevisions(record)].sort(), ['r2', 'r4']);
  });
});

describe('traffic validation', () => {
  const revisions = new Set(['r1', 'r2', 'r3']);
  const rejects = (raw: unknown, message: RegExp) =>
    assert.throws(
      () => validateTraffic(raw, revisions),
      (err: unknown) =>
        err instanceof NimbusError && err.code === 'NIMBUS_ERR_INVALID_REQUEST' && message.test(err.message),
    );

  it('accepts weights, latest and tags, and normalises them', () => {
    assert.deepEqual(
      validateTraffic(
        [
          { revision: 'r3', percent: 90 },
          { latest: true, percent: 10 },
          { revision: 'r2', tag: 'blue' },
        ],
        revisions,
      ),
      [
        { revision: 'r3', percent: 90 },
        { latest: true, percent: 10 },
        { revision: 'r2', percent: 0, tag: 'blue' },
      ],
    );
  });

  it('rejects each kind of mistake with a message naming the entry', () => {
    rejects(undefined, /non-empty list/);
    rejects([], /non-empty list/);
    rejects([{ revision: 'r1', percent: 90 }], /sum to 100, got 90/);
    rejects([{ revision: 'r9', percent: 100 }], /\[0\]\.revision: no revision "r9"/);
    rejects([{ percent: 100 }], /\[0\]: revision .* or latest: true is required/);
    rejects([{ revision: 'r1', latest: true, percent: 100 }], /not both/);
    rejects([{ revision: 'r1', percent: 100.5 }], /\[0\]\.percent: expected a whole number/);
    rejects([{ revision: 'r1', percent: -1 }], /percent/);
    rejects([{ revision: 'r1', percent: 100, weight: 3 }], /unknown field "weight"/);
    rejects([{ revision: 'r1', percent: 100, tag: 'Bad_Tag' }], /\[0\]\.tag: expected a DNS label/);
    rejects([{ revision: 'r1', percent: 100, tag: 'r2' }], /looks like a revision id/);
    rejects(
      [
        { revision: 'r1', percent: 100, tag: 'x' },
        { revision: 'r2', tag: 'x' },
      ],
      /\[1\]\.tag: "x" is used twice/,
    );
    rejects(
      [
        { revision: 'r1', percent: 0 },
        { latest: true, percent: 100 },
      ],
      /0 percent needs a tag/,
    );
  });
});

describe('scalePercents', () => {
  it('keeps proportions and the exact total (largest remainder)', () => {
    assert.deepEqual(scalePercents([100], 95), [95]);
    assert.deepEqual(scalePercents([50, 50], 95), [48, 47]);
    assert.deepEqual(scalePercents([90, 10, 0], 75), [68, 7, 0]);
    assert.equal(
      scalePercents([33, 33, 34], 49).reduce((a, b) => a + b),
      49,
    );
  });
});
