import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryRuntime } from '../../test/support/memory-runtime.js';
import { createRuntimeByKind } from './by-kind.js';
import type { InstanceSpec, RuntimeEvent } from './types.js';

const spec = (id: string, kind: InstanceSpec['kind']): InstanceSpec => ({
  id,
  function: 'f',
  revision: 'r1',
  kind,
  artifactDir: '/nowhere',
  env: {},
  memoryMb: 64,
  timeoutMs: 1000,
});

describe('createRuntimeByKind', () => {
  it('starts each kind on its provider and merges list, events, stats and stop', async () => {
    const processes = createMemoryRuntime({ handler: () => new Response('process') });
    const isolates = createMemoryRuntime({ handler: () => new Response('isolate') });
    const runtime = createRuntimeByKind({ process: processes, isolate: isolates });
    const events: RuntimeEvent[] = [];
    runtime.subscribe((e) => events.push(e));

    const node = await runtime.start(spec('a', 'node'));
    const app = await runtime.start(spec('b', 'app'));
    const iso = await runtime.start(spec('c', 'isolate'));
    assert.equal(await (await node.fetch(new Request('http://x/'))).text(), 'process');
    assert.equal(await (await app.fetch(new Request('http://x/'))).text(), 'process');
    assert.equal(await (await iso.fetch(new Request('http://x/'))).text(), 'isolate');
    assert.deepEqual(
      runtime
        .list()
        .map((i) => i.id)
        .sort(),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      isolates.list().map((i) => i.id),
      ['c'],
    );
    assert.ok(events.some((e) => e.type === 'state' && e.id === 'c' && e.state === 'ready'));

    await runtime.stop('c');
    await runtime.stop('unknown');
    assert.deepEqual(isolates.list(), []);
    assert.deepEqual(
      runtime
        .list()
        .map((i) => i.id)
        .sort(),
      ['a', 'b'],
    );
    await runtime.close();
    assert.deepEqual(runtime.list(), []);
  });

  it('sends every kind to the process provider when there is no isolate provider', async () => {
    const processes = createMemoryRuntime();
    const runtime = createRuntimeByKind({ process: processes });
    await runtime.start(spec('i', 'isolate'));
    assert.deepEqual(
      processes.list().map((i) => i.id),
      ['i'],
    );
    assert.equal(await runtime.freeze!('i'), true, 'freeze goes to the provider holding the instance');
    assert.equal(await runtime.thaw!('gone'), false);
    await runtime.close();
  });
});
