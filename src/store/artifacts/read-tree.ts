import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactFile } from '../types.js';
import { normalizeMode } from './digest.js';

/**
 * The files of an artifact directory as `put` takes them (paths `/`-separated, relative), so a
 * stored artifact can be read back and extended, e.g. into a snapshot's derived artifact.
 */
export async function readArtifactTree(dir: string): Promise<ArtifactFile[]> {
  const out: ArtifactFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const full = join(dir, path);
        out.push({ path, mode: normalizeMode((await stat(full)).mode), content: await readFile(full) });
      }
    }
  };
  await walk('');
  return out;
}
