import { readdir, stat } from 'node:fs/promises';
import { create } from 'tar';
import { CliError } from './errors.js';

/**
 * Folders never uploaded, at any depth: version control and Nimbus's own data dir. node_modules
 * stays (the server bundles dependencies from it) and so does dist (a handler may live there).
 */
const SKIPPED = new Set(['.git', '.nimbus']);

export interface PackResult {
  /** gzip-compressed tar; paths relative to the directory, no leading `./`. */
  archive: Buffer;
  files: number;
  /** Sum of the packed files' sizes, before compression. */
  bytes: number;
}

function skipped(path: string): boolean {
  return path.split(/[\\/]/).some((segment) => SKIPPED.has(segment));
}

/** Packs `dir` for `POST /api/v1/functions`. Throws CliError when it is missing, not a directory, or empty. */
export async function packDirectory(dir: string): Promise<PackResult> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) throw new CliError(`no such directory: ${dir}`);
  if (!info.isDirectory()) throw new CliError(`not a directory: ${dir}`);
  const entries = (await readdir(dir)).filter((name) => !skipped(name)).sort();
  if (entries.length === 0) throw new CliError(`nothing to deploy: ${dir} is empty`);

  let files = 0;
  let bytes = 0;
  // portable: no owner, uid or mtime-dependent extended headers, so the archive depends on content
  // (and names) only; the server decides "unchanged" from what it unpacks, not from these bytes.
  const stream = create(
    {
      cwd: dir,
      gzip: true,
      portable: true,
      filter: (path, entry) => {
        if (skipped(path)) return false;
        if ('isFile' in entry && entry.isFile()) {
          files++;
          bytes += entry.size;
        }
        return true;
      },
    },
    entries,
  );
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return { archive: Buffer.concat(chunks), files, bytes };
}
