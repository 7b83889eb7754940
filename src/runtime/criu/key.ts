import type { RevisionRecord } from '../../core/types.js';
import type { CheckpointSubject } from './support.js';

/**
 * The revision identity a CRIU image is kept under: set for app mode with `snapshot` (node
 * functions get V8 snapshots from that flag instead). Images are per identity, never per `rN`,
 * so a function deleted and made again never restores another's image.
 */
export function checkpointKey(revision: Pick<RevisionRecord, 'config' | 'identity'>): string | undefined {
  return revision.config.runtime === 'app' && revision.config.snapshot ? revision.identity : undefined;
}

/** What decides whether a revision's cold starts can be CRIU restores. */
export function checkpointSubject(revision: Pick<RevisionRecord, 'config' | 'identity'>): CheckpointSubject {
  return {
    kind: revision.config.runtime,
    network: revision.config.network ?? 'egress',
    checkpoint: checkpointKey(revision),
  };
}
