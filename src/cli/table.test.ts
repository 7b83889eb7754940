import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FunctionSummary } from './api-types.js';
import { formatFunctionList } from './functions.js';
import { formatLogRecord } from './logs.js';
import { formatAge, formatBytes, formatTable } from './table.js';

describe('formatTable', () => {
  it('aligns columns two spaces apart with no trailing blanks', () => {
    const out = formatTable(
      ['NAME', 'REV', 'URL'],
      [
        ['hello', 'r12', 'http://x/fn/hello/'],
        ['a', 'r1', ''],
      ],
    );
    assert.equal(out, ['NAME   REV  URL', 'hello  r12  http://x/fn/hello/', 'a      r1'].join('\n'));
  });
});

describe('formatBytes and formatAge', () => {
  it('uses B, KB, MB with one decimal below 10', () => {
    assert.deepEqual(
      [formatBytes(812), formatBytes(1229), formatBytes(20 * 1024), formatBytes(3.5 * 1024 * 1024)],
      ['812 B', '1.2 KB', '20 KB', '3.5 MB'],
    );
  });

  it('says how long ago, coarsely, and - for missing times', () => {
    const now = Date.parse('2025-01-01T12:00:00Z');
    assert.equal(formatAge('2025-01-01T11:59:18Z', now), '42s ago');
    assert.equal(formatAge('2025-01-01T11:55:00Z', now), '5m ago');
    assert.equal(formatAge('2024-12-30T12:00:00Z', now), '2d ago');
    assert.equal(formatAge(undefined, now), '-');
  });
});

describe('command output', () => {
  it('lists functions as NAME REVISION RUNTIME INSTANCES UPDATED URL', () => {
    const now = Date.parse('2025-01-01T12:00:00Z');
    const fn: FunctionSummary = {
      name: 'hello',
      latestRevision: 'r2',
      revisionCount: 2,
      createdAt: '2025-01-01T11:00:00Z',
      updatedAt: '2025-01-01T11:57:00Z',
      runtime: 'node',
      url: 'http://127.0.0.1:8080/fn/hello/',
      instances: { ready: 2, busy: 1, starting: 1 },
    };
    assert.equal(
      formatFunctionList([fn], now),
      [
        'NAME   REVISION  RUNTIME  INSTANCES       UPDATED  URL',
        'hello  r2        node     3 (1 starting)  3m ago   http://127.0.0.1:8080/fn/hello/',
      ].join('\n'),
    );
  });

  it('prints a log record as TIME [rN inst] [requestId] line, leaving out a missing request id', () => {
    const base = {
      time: '2025-01-01T12:00:00.000Z',
      function: 'f',
      revision: 'r1',
      instance: 'i-1',
      stream: 'stdout' as const,
    };
    assert.equal(
      formatLogRecord({ ...base, requestId: 'req-9', line: 'hi' }),
      '2025-01-01T12:00:00.000Z [r1 i-1] [req-9] hi',
    );
    assert.equal(formatLogRecord({ ...base, line: 'boot' }), '2025-01-01T12:00:00.000Z [r1 i-1] boot');
  });
});
