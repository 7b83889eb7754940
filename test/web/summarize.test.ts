import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// The dashboard's own module: plain browser JavaScript without types, importable here (no top-level DOM use).
// @ts-expect-error TS7016, no declaration file for web/api.js
import { summarize } from '../../web/api.js';

describe('dashboard traffic summary', () => {
  it('counts every record, takes p50/p95 from requests only: a WebSocket (101) is not a slow request', () => {
    const requests = Array.from({ length: 20 }, (_, i) => ({ status: 200, durationMs: i + 1, cold: i === 0 }));
    const sockets = [
      { status: 101, durationMs: 3_600_000, cold: false },
      { status: 101, durationMs: 7_200_000, cold: false },
    ];
    const s = summarize([...requests, ...sockets, { status: 502, durationMs: 5, cold: false }]);
    assert.equal(s.count, 23);
    assert.equal(s.errors, 1);
    assert.equal(s.cold, 1);
    // The 21 request durations: 1…20 and the 502's 5.
    assert.equal(s.p50, 10);
    assert.equal(s.p95, 19);
  });
});
