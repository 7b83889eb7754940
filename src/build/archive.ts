import { posix } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { NimbusError } from '../core/errors.js';

/** One file of an uploaded source tree. */
export interface SourceFile {
  /** Relative, `/`-separated, normalised (no `./`, `.` or `..` segments). */
  path: string;
  /** Unix permission bits as found in the archive (e.g. 0o755). */
  mode: number;
  content: Buffer;
}

export interface UnpackLimits {
  /** Most files the archive may hold (links count as files). Default 10,000. */
  maxFiles?: number;
  /** Most bytes of file content once unpacked. Default 200 MB. */
  maxBytes?: number;
}

const DEFAULT_MAX_FILES = 10_000;
const DEFAULT_MAX_BYTES = 200 * 1024 * 1024;
// A chain of symlinks longer than this is treated as a loop (Linux's own limit is 40).
const MAX_LINK_HOPS = 40;

const bad = (message: string, details?: Record<string, unknown>) =>
  new NimbusError('NIMBUS_ERR_INVALID_ARCHIVE', `Invalid archive: ${message}`, { details });

/**
 * The archive path `raw` as a clean relative path, or '' for the root itself. Throws for absolute
 * paths (also Windows drive paths) and any `..` segment, even one that would stay inside.
 */
function cleanPath(raw: string): string {
  if (raw.includes('\0')) throw bad(`entry ${JSON.stringify(raw)} has a NUL character in its path`);
  if (raw.includes('\\')) throw bad(`entry ${JSON.stringify(raw)}: backslashes are not allowed in paths`);
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw)) throw bad(`entry ${JSON.stringify(raw)} has an absolute path`);
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw bad(`entry ${JSON.stringify(raw)} points outside the archive ("..")`);
  return segments.join('/');
}

interface Link {
  path: string;
  /** Archive path the link refers to, already resolved against the link's directory. */
  target: string;
  mode: number;
  raw: string;
}

/**
 * Reads a gzip-compressed tar into memory and returns its regular files, sorted by path.
 * Directory entries are skipped (directories are implied by file paths); a leading `./` is
 * stripped. Hard links and symlinks that stay inside the archive become copies of their target
 * (a symlink to a directory copies the files under it); a dangling in-archive symlink is dropped.
 * Throws NIMBUS_ERR_INVALID_ARCHIVE for: data that is not gzip or not tar, an absolute path or a
 * `..` segment, a link that points outside, device files and FIFOs, and archives over the limits.
 */
export async function unpackArchive(tarGz: Buffer, limits: UnpackLimits = {}): Promise<SourceFile[]> {
  const maxFiles = limits.maxFiles ?? DEFAULT_MAX_FILES;
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  if (tarGz.length < 2 || tarGz[0] !== 0x1f || tarGz[1] !== 0x8b) {
    throw bad('not gzip data: upload a gzip-compressed tar of the source directory (.tar.gz)');
  }

  const files = new Map<string, SourceFile>();
  const symlinks: Link[] = [];
  const hardlinks: Link[] = [];
  let bytes = 0;
  let count = 0;
  const countFile = (size: number, path: string) => {
    if (++count > maxFiles) throw bad(`more than ${maxFiles} files`, { limit: 'maxFiles', maxFiles });
    bytes += size;
    if (bytes > maxBytes) {
      throw bad(`more than ${maxBytes} bytes once unpacked (at ${path})`, { limit: 'maxBytes', maxBytes });
    }
  };

  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      parser.abort(err instanceof Error ? err : new Error(String(err)));
      reject(err instanceof NimbusError ? err : bad(`not a readable tar.gz: ${(err as Error).message ?? err}`));
    };
    const onEntry = (entry: ReadEntry) => {
      if (failed) return entry.resume();
      const path = cleanPath(entry.path);
      const mode = (entry.mode ?? 0o644) & 0o777;
      switch (entry.type) {
        case 'Directory':
        case 'GNUDumpDir':
          return entry.resume();
        case 'File':
        case 'OldFile':
        case 'ContiguousFile': {
          if (path === '') throw bad(`file entry ${JSON.stringify(entry.path)} has no name`);
          countFile(entry.size, path);
          const chunks: Buffer[] = [];
          entry.on('data', (c: Buffer) => chunks.push(c));
          entry.on('end', () => files.set(path, { path, mode, content: Buffer.concat(chunks) }));
          return;
        }
        case 'Link':
        case 'SymbolicLink': {
          const raw = entry.linkpath ?? '';
          const where = `${entry.type === 'Link' ? 'hard link' : 'symlink'} ${path} -> ${raw}`;
          if (raw.startsWith('/')) throw bad(`${where} points outside the archive (absolute target)`);
          // Hard link targets are archive paths; symlink targets are relative to the link's folder.
          const joined = entry.type === 'Link' ? raw : posix.join(posix.dirname(path), raw);
          const target = posix.normalize(joined);
          if (target === '..' || target.startsWith('../')) throw bad(`${where} points outside the archive`);
          const link = { path, target: target === '.' ? '' : target, mode, raw };
          (entry.type === 'Link' ? hardlinks : symlinks).push(link);
          return entry.resume();
        }
        case 'CharacterDevice':
        case 'BlockDevice':
        case 'FIFO':
          throw bad(`${path} is a device file or FIFO (${entry.type}); only files, folders and links are allowed`);
        default:
          throw bad(`${path} has an unsupported entry type (${entry.type})`);
      }
    };
    const parser = new Parser({
      strict: true,
      onReadEntry(entry) {
        try {
          onEntry(entry);
        } catch (err) {
          entry.resume();
          fail(err);
        }
      },
    });
    parser.on('error', fail);
    parser.on('end', () => {
      if (!failed) resolve();
    });
    parser.end(tarGz);
  });

  for (const link of hardlinks) {
    const target = files.get(link.target);
    if (!target) throw bad(`hard link ${link.path} -> ${link.raw}: target is not a file in the archive`);
    countFile(target.content.length, link.path);
    files.set(link.path, { path: link.path, mode: target.mode, content: target.content });
  }
  resolveSymlinks(symlinks, files, countFile);
  const sorted = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const f of sorted) {
    for (let cut = f.path.indexOf('/'); cut !== -1; cut = f.path.indexOf('/', cut + 1)) {
      if (files.has(f.path.slice(0, cut))) throw bad(`${f.path.slice(0, cut)} is both a file and a folder`);
    }
  }
  return sorted;
}

/** Materialises in-archive symlinks as copies, following chains (links to links) with a bound. */
function resolveSymlinks(
  links: Link[],
  files: Map<string, SourceFile>,
  countFile: (size: number, path: string) => void,
): void {
  const byPath = new Map(links.map((l) => [l.path, l]));
  // The real path of `path`: symlinks in it (as a whole or as a parent folder) replaced.
  const realPath = (path: string, hops = 0): string => {
    if (hops > MAX_LINK_HOPS) throw bad(`symlink loop at ${path}`);
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const head = parts.slice(0, i).join('/');
      const link = byPath.get(head);
      if (link) return realPath([link.target, ...parts.slice(i)].filter(Boolean).join('/'), hops + 1);
    }
    return path;
  };
  // Links to files first, so a link to a folder also copies the in-folder links to files.
  const toFolders: [Link, string][] = [];
  for (const link of links) {
    const target = realPath(link.target);
    const file = files.get(target);
    if (!file) {
      toFolders.push([link, target]);
      continue;
    }
    countFile(file.content.length, link.path);
    files.set(link.path, { path: link.path, mode: file.mode, content: file.content });
  }
  // Links to folders copy the files under them; a dangling link is dropped (nothing to serve).
  const snapshot = [...files.values()];
  for (const [link, target] of toFolders) {
    const prefix = target === '' ? '' : `${target}/`;
    if (link.path === target || link.path.startsWith(prefix)) throw bad(`symlink loop at ${link.path}`);
    for (const f of snapshot) {
      if (!f.path.startsWith(prefix)) continue;
      const path = `${link.path}/${f.path.slice(prefix.length)}`;
      countFile(f.content.length, path);
      files.set(path, { path, mode: f.mode, content: f.content });
    }
  }
}
