import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../core/package-root.js';
import { createProcessRuntime } from '../process/process-runtime.js';
import type { InstanceSpec, RuntimeEvent } from '../types.js';
import { withSnapshotFallback } from './fallback.js';

describe('snapshot fallback', () => {
  it('starts normally, saying why, when Node refuses the blob', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-snap-fallback-'));
    copyFileSync(join(packageRoot(), 'test', 'fixtures', 'functions', 'echo.mjs'), join(dir, 'echo.mjs'));
    writeFileSync(join(dir, 'snapshot.blob'), 'not a snapshot');
    chmodSync(dir, 0o755); // as artifact dirs are: the instance runs as nobody
    const runtime = withSnapshotFallback(createProcessRuntime());
    after(async () => {
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const events: RuntimeEvent[] = [];
    runtime.subscribe((e) => events.push(e));
    const spec: InstanceSpec = {
      id: 'fallback-1',
      function: 'fn',
      revision: 'r1',
      kind: 'node',
      artifactDir: dir,
      entry: 'echo.mjs',
      snapshotBlob: 'snapshot.blob',
      env: {},
      memoryMb: 128,
      timeoutMs: 5000,
    };
    const instance = await runtime.start(spec);
    assert.equal(instance.startMode, 'spawn');
    assert.equal((await instance.fetch(new Request('http://fn/'))).status, 200);
    const note = events.find((e) => e.type === 'log' && e.stream === 'system');
    assert.ok(note && note.type === 'log', 'a system log line');
    assert.match(note.line, /snapshot could not be restored.*starting normally/);
  });
});
