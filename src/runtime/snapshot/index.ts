/** V8 startup snapshots of node functions (docs/snapshots.md): the builder; restoring is the process provider's `snapshotBlob`. */

export { isSnapshotLoadFailure, withSnapshotFallback } from './fallback.js';
export { withInitReports } from './init-reports.js';
export {
  bundleSnapshotEntry,
  createSnapshotBuilder,
  SNAPSHOT_BLOB,
  SNAPSHOT_GUEST,
  type SnapshotBuilder,
  type SnapshotBuilderOptions,
  type SnapshotBuildRequest,
  type SnapshotBuildResult,
} from './snapshot-builder.js';
