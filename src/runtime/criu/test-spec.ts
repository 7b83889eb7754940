import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InstanceSpec } from '../types.js';

/** The app fixtures the CRIU tests run (test/fixtures/apps). */
export const FIXTURE_APPS = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'apps');

/** For the CRIU tests: specs of one Python fixture app, checkpointed under `key`. */
export function appSpecs(app: string, key: string, network: 'none' | 'egress') {
  return (id: string, extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
    id,
    function: app,
    revision: 'r1',
    kind: 'app',
    artifactDir: join(FIXTURE_APPS, app),
    command: ['python3', 'server.py'],
    env: {},
    memoryMb: 256,
    timeoutMs: 10_000,
    startTimeoutMs: 60_000,
    network,
    checkpoint: key,
    ...extra,
  });
}

/** Host pids of the slirp4netns processes attached to the network namespace of `pid`. */
export function slirpsOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (argv[0]?.endsWith('slirp4netns') && argv.includes(String(pid)) && state !== 'Z') out.push(Number(entry));
    } catch {}
  }
  return out;
}
