import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NimbusError } from '../../core/errors.js';
import type { ArtifactStore } from '../types.js';
import { DIGEST_RE, digestNormalized, normalizeFiles } from './digest.js';

export interface LocalArtifactStoreOptions {
  /** Root directory; artifacts live in `DIR/sha256/<digest>/`, uploads in progress in `DIR/tmp/`. */
  dir: string;
}

/**
 * Artifacts as plain directories on the local disk. A put writes the tree into `DIR/tmp/`, makes it
 * read-only (files 0444, or 0555 when executable; directories 0555), then renames it into place, so
 * an artifact directory is either absent or complete. Putting a tree that is already stored does
 * nothing. `DIR/tmp` must be on the same filesystem as `DIR/sha256` (it is a sibling) for the
 * rename to be atomic.
 */
export function createLocalArtifactStore(options: LocalArtifactStoreOptions): ArtifactStore {
  const root = join(options.dir, 'sha256');
  const tmpRoot = join(options.dir, 'tmp');
  const pathOf = (digest: string) => join(root, digest);

  async function exists(digest: string): Promise<boolean> {
    if (!DIGEST_RE.test(digest)) return false;
    try {
      return (await stat(pathOf(digest))).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  return {
    async put(files) {
      const tree = normalizeFiles(files);
      const digest = digestNormalized(tree);
      if (await exists(digest)) return digest;

      await mkdir(root, { recursive: true });
      await mkdir(tmpRoot, { recursive: true });
      const tmp = join(tmpRoot, `${digest}.${randomBytes(6).toString('hex')}`);
      try {
        await mkdir(tmp);
        const dirs = new Set<string>();
        for (const f of tree) {
          const target = join(tmp, f.path);
          await mkdir(dirname(target), { recursive: true });
          for (let d = dirname(f.path); d !== '.'; d = dirname(d)) dirs.add(d);
          await writeFile(target, f.content, { flag: 'wx' });
          // chmod after writing: the mode given to writeFile is filtered by the umask.
          await chmod(target, f.mode === 0o755 ? 0o555 : 0o444);
        }
        // Deepest first, so a parent is still writable while its children are changed. The top
        // directory stays writable until after the rename: moving a directory to a new parent
        // updates its `..` entry, which needs write permission on it (for non-root users).
        for (const d of [...dirs].sort((a, b) => b.length - a.length)) await chmod(join(tmp, d), 0o555);
        try {
          await rename(tmp, pathOf(digest));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          // Another put of the same tree won the race: the content is identical by construction.
          if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(digest))) return digest;
          throw err;
        }
        await chmod(pathOf(digest), 0o555);
        return digest;
      } finally {
        await removeTree(tmp);
      }
    },

    has: exists,

    async localPath(digest) {
      if (!(await exists(digest))) {
        throw new NimbusError('NIMBUS_ERR_REVISION_NOT_FOUND', `Artifact not found: sha256:${digest}`, {
          details: { digest },
        });
      }
      return pathOf(digest);
    },

    async list() {
      let names: string[];
      try {
        names = await readdir(root);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const out: { digest: string; storedAt: number }[] = [];
      for (const digest of names.filter((n) => DIGEST_RE.test(n))) {
        // The directory's mtime: when its last entry was written, just before the rename into place.
        const info = await stat(pathOf(digest)).catch(() => undefined);
        if (info?.isDirectory()) out.push({ digest, storedAt: info.mtimeMs });
      }
      return out;
    },

    async delete(digest) {
      if (!(await exists(digest))) return;
      // Move it out of sight first, so no reader sees a half-deleted artifact.
      await mkdir(tmpRoot, { recursive: true });
      const doomed = join(tmpRoot, `${digest}.deleting.${randomBytes(6).toString('hex')}`);
      await chmod(pathOf(digest), 0o755);
      try {
        await rename(pathOf(digest), doomed);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a concurrent delete won
        throw err;
      }
      await removeTree(doomed);
    },
  };
}

/** rm -rf that also works on read-only directories when not running as root. */
async function removeTree(path: string): Promise<void> {
  const makeWritable = async (dir: string): Promise<void> => {
    await chmod(dir, 0o755);
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await makeWritable(join(dir, entry.name));
    }
  };
  try {
    await makeWritable(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await rm(path, { recursive: true, force: true });
}
