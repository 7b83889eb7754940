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
