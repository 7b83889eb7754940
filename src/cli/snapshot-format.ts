import type { RevisionSnapshot } from '../core/types.js';
import { formatBytes } from './table.js';

/**
 * One line about a revision's V8 snapshot (docs/snapshots.md): "ready (16.2 MB, built in 1.2 s,
 * node v20.20.2)" or "FAILED, instances start without one: <why>".
 */
export function formatSnapshot(snapshot: RevisionSnapshot): string {
  if (snapshot.status === 'ready')
    return `ready (${formatBytes(snapshot.bytes)}, built in ${(snapshot.buildMs / 1000).toFixed(1)} s, node ${snapshot.node})`;
  return `FAILED, instances start without one: ${snapshot.error}`;
}
