import type { FunctionConfig, RevisionSnapshot } from '../core/types.js';
import { formatBytes } from './table.js';

/**
 * One line about a revision's V8 snapshot (docs/snapshots.md): "ready (16.2 MB, built in 1.2 s,
 * node v20.20.2)", "auto (built after init took 612 ms): ready (…)", "auto: not built, init took
 * 12 ms (threshold 250 ms)" or "FAILED, instances start without one: <why>".
 */
export function formatSnapshot(snapshot: RevisionSnapshot): string {
  const auto = snapshot.auto;
  const why = auto ? `init took ${auto.initMs} ms` : '';
  if (snapshot.status === 'skipped')
    return `auto: not built, ${why} (threshold ${auto!.thresholdMs} ms); instances start normally`;
  if (snapshot.status === 'building') return `auto: building in the background (${why})`;
  const prefix = auto ? `auto (built after ${why}): ` : '';
  if (snapshot.status === 'ready')
    return `${prefix}ready (${formatBytes(snapshot.bytes)}, built in ${(snapshot.buildMs / 1000).toFixed(1)} s, node ${snapshot.node})`;
  return `${prefix}FAILED, instances start without one: ${snapshot.error}`;
}

/** The snapshot line of a revision with no snapshot record: `auto` not decided yet, or off. */
export function formatNoSnapshot(config: Pick<FunctionConfig, 'runtime' | 'snapshot'>): string | undefined {
  if (config.runtime !== 'node') return undefined;
  if (config.snapshot === false) return 'off (snapshot: false)';
  if (config.snapshot === undefined) return 'auto: decided at the first cold start (built when init is slow)';
  return undefined;
}
