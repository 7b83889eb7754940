import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { UsageError } from './errors.js';
import {
  buildOverrides,
  collectEnv,
  collectHeader,
  parseMemory,
  parsePort,
  parsePositiveNumber,
  parseSeconds,
  parseShare,
  parseSince,
  parseWholeSeconds,
} from './options.js';

describe('flag parsers', () => {
  it('accept whole numbers and reject junk a lenient parse would let through', () => {
    assert.equal(parseMemory('512'), 512);
    for (const bad of ['lots', '', '1e3', ' 8', '8MB', '1.5', '-1', '0']) {
      assert.throws(() => parseMemory(bad), InvalidArgumentError, JSON.stringify(bad));
    }
  });

  it('accept fractional seconds but not units or negatives', () => {
    assert.equal(parseSeconds('2.5'), 2.5);
    assert.equal(parseSeconds('0'), 0);
    for (const bad of ['10s', '-1', 'abc', '.5']) assert.throws(() => parseSeconds(bad), InvalidArgumentError, bad);
  });

  it('bound ports to 0..65535', () => {
    assert.equal(parsePort('0'), 0);
    assert.equal(parsePort('65535'), 65535);
    assert.throws(() => parsePort('65536'), InvalidArgumentError);
  });

  it('collect repeated --env K=V into one object, keeping = inside values', () => {
    const env = collectEnv('B=x=y', collectEnv('A=1'));
    assert.deepEqual(env, { A: '1', B: 'x=y' });
    assert.deepEqual(collectEnv('EMPTY='), { EMPTY: '' });
    for (const bad of ['NOEQUALS', '=v', '1A=v', 'A-B=v'])
      assert.throws(() => collectEnv(bad), InvalidArgumentError, bad);
  });

  it("collect repeated --header 'K: V' pairs, trimming around the colon", () => {
    assert.deepEqual(collectHeader('X-B:2', collectHeader('x-a: 1 ')), [
      ['x-a', '1'],
      ['X-B', '2'],
    ]);
    for (const bad of ['nocolon', ': v', 'a b: v']) assert.throws(() => collectHeader(bad), InvalidArgumentError, bad);
  });
});

describe('buildOverrides', () => {
  it('is empty when no flag is given, so the manifest decides everything', () => {
    assert.deepEqual(buildOverrides({}), {});
  });

  it('keeps only the given fields, in manifest shape, with scale nested', () => {
    assert.deepEqual(
      buildOverrides({ name: 'x', memory: 128, env: { A: '1' }, min: 1, idleTimeout: 60, command: 'python3 app.py' }),
      { name: 'x', command: 'python3 app.py', env: { A: '1' }, memory: 128, scale: { min: 1, idleTimeout: 60 } },
    );
  });

  it('passes --snapshot, --snapshot required and --no-snapshot through', () => {
    assert.deepEqual(buildOverrides({ snapshot: true }), { snapshot: true });
    assert.deepEqual(buildOverrides({ snapshot: 'required' }), { snapshot: 'required' });
    assert.deepEqual(buildOverrides({ snapshot: false }), { snapshot: false });
  });

  it('rejects --min above --max as a usage error', () => {
    assert.throws(() => buildOverrides({ min: 3, max: 2 }), UsageError);
    assert.deepEqual(buildOverrides({ min: 2, max: 2 }), { scale: { min: 2, max: 2 } });
  });
});

describe('autoscaler flags', () => {
  it('go under scale with the manifest names', () => {
    assert.deepEqual(
      buildOverrides({
        initial: 2,
        metric: 'rps',
        target: 50,
        targetUtilization: 0.5,
        window: 120,
        scaleDownDelay: 30,
        maxQueue: 100,
      }),
      {
        scale: {
          initial: 2,
          metric: 'rps',
          target: 50,
          targetUtilization: 0.5,
          window: 120,
          scaleDownDelay: 30,
          maxQueue: 100,
        },
      },
    );
  });
  it('rejects --initial outside --min..--max as a usage error', () => {
    assert.throws(() => buildOverrides({ min: 2, initial: 1 }), UsageError);
    assert.throws(() => buildOverrides({ max: 2, initial: 3 }), UsageError);
    assert.deepEqual(buildOverrides({ min: 1, max: 3, initial: 3 }), { scale: { min: 1, max: 3, initial: 3 } });
  });
  it('parse durations, shares and positive numbers strictly', () => {
    assert.equal(parseWholeSeconds('90'), 90);
    assert.equal(parseWholeSeconds('2m'), 120);
    assert.equal(parseWholeSeconds('1h'), 3600);
    assert.throws(() => parseWholeSeconds('1.5m'), InvalidArgumentError);
    assert.throws(() => parseWholeSeconds('soon'), InvalidArgumentError);
    assert.equal(parseShare('0.7'), 0.7);
    assert.equal(parseShare('1'), 1);
    assert.throws(() => parseShare('70'), InvalidArgumentError);
    assert.throws(() => parseShare('0'), InvalidArgumentError);
    assert.equal(parsePositiveNumber('2.5'), 2.5);
    assert.throws(() => parsePositiveNumber('0'), InvalidArgumentError);
    assert.throws(() => parsePositiveNumber('-1'), InvalidArgumentError);
  });
});

describe('parseSince', () => {
  const now = Date.parse('2025-01-01T12:00:00.000Z');

  it('turns durations into an ISO time before now', () => {
    assert.equal(parseSince('10m', now), '2025-01-01T11:50:00.000Z');
    assert.equal(parseSince('2h', now), '2025-01-01T10:00:00.000Z');
  });

  it('passes ISO times and epoch ms through, and rejects anything else', () => {
    assert.equal(parseSince('2025-01-01T10:00:00Z', now), '2025-01-01T10:00:00Z');
    assert.equal(parseSince('1735725600000', now), '1735725600000');
    assert.throws(() => parseSince('yesterday', now), UsageError);
  });
});
