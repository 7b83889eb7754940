// Test support: one isolate instance running a probe module, asked with JSON, for the tests that
// compare the prelude's answers with Node's own.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIsolateRuntime } from '../index.js';

export interface Probe {
  /** POSTs `input` as JSON to the probe and answers its JSON. */
  ask(input: unknown): Promise<unknown>;
  close(): Promise<void>;
}

/** `source` defines `probe(input)` (plain JavaScript; it may be async). */
export async function startProbe(source: string): Promise<Probe> {
  const runtime = createIsolateRuntime({ spares: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-probe-'));
  writeFileSync(
    join(dir, 'probe.mjs'),
    `${source}\nexport default async (req) => Response.json(await probe(await req.json()));`,
  );
  const fn = await runtime.start({
    id: 'prelude-probe',
    function: 'probe',
    revision: 'r1',
    kind: 'isolate',
    artifactDir: dir,
    entry: 'probe.mjs',
    env: {},
    memoryMb: 64,
    timeoutMs: 5000,
  });
  return {
    async ask(input) {
      const res = await fn.fetch(new Request('http://fn/', { method: 'POST', body: JSON.stringify(input) }));
      if (res.status !== 200) throw new Error(`the probe answered ${res.status}: ${await res.text()}`);
      return res.json();
    },
    async close() {
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
