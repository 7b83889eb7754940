import type { CheckpointInfo } from './api-types.js';
import { formatBytes } from './table.js';

/**
 * One line about an app-mode revision's CRIU checkpoint (docs/criu.md): "in use (19.0 MB image,
 * dumped in 160 ms, 3 restored)", "not yet: made after the first instance is ready", or
 * "not used: <why>".
 */
export function formatCheckpoint(c: CheckpointInfo): string {
  if (c.restores && c.image)
    return `in use (${formatBytes(c.image.bytes)} image, dumped in ${c.image.dumpMs} ms, ${c.restored} restored)`;
  if (c.state === 'pending') return `not yet: ${c.reason ?? 'being made'}`;
  return `not used: ${c.reason ?? c.state}`;
}
