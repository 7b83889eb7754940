import { createHash } from 'node:crypto';
import { NimbusError } from '../../core/errors.js';
import type { ArtifactFile } from '../types.js';

/** The mode an artifact keeps: only whether the file is executable. */
export function normalizeMode(mode: number): 0o755 | 0o644 {
  return mode & 0o111 ? 0o755 : 0o644;
}

const invalid = (path: unknown, why: string) =>
  new NimbusError('NIMBUS_ERR_INVALID_REQUEST', `Invalid artifact path ${JSON.stringify(path)}: ${why}`);

/**
 * Throws NIMBUS_ERR_INVALID_REQUEST unless `path` is a plain relative `/`-separated path: no
 * leading `/`, no empty, `.` or `..` segment, no backslash or NUL (so it cannot leave the
 * artifact directory on any platform, and its bytes hash the same way everywhere).
 */
export function assertArtifactPath(path: unknown): asserts path is string {
  if (typeof path !== 'string' || path.length === 0) throw invalid(path, 'empty');
  if (path.length > 4096) throw invalid(path, 'longer than 4096 characters');
  if (path.startsWith('/')) throw invalid(path, 'absolute paths are not allowed');
  if (path.includes('\\') || path.includes('\0')) throw invalid(path, 'backslash or NUL character');
  for (const segment of path.split('/')) {
    if (segment === '..') throw invalid(path, '".." segments are not allowed');
    if (segment === '' || segment === '.') throw invalid(path, 'empty or "." segment');
  }
}

export interface NormalizedFile {
  path: string;
  mode: 0o755 | 0o644;
  content: Buffer;
  /** UTF-8 bytes of `path`, the sort key. */
  pathBytes: Buffer;
}

/**
 * Validates the tree and puts it in digest order: sorted by the UTF-8 bytes of the path (not JS
 * string order, which differs for characters outside the BMP). Rejects duplicate paths and a path
 * that is both a file and a directory (`a` and `a/b`).
 */
export function normalizeFiles(files: readonly ArtifactFile[]): NormalizedFile[] {
  const out = files.map((f): NormalizedFile => {
    assertArtifactPath(f.path);
    if (!Buffer.isBuffer(f.content)) throw invalid(f.path, 'content is not a Buffer');
    return { path: f.path, mode: normalizeMode(f.mode), content: f.content, pathBytes: Buffer.from(f.path, 'utf8') };
  });
  out.sort((a, b) => Buffer.compare(a.pathBytes, b.pathBytes));
  const paths = new Set(out.map((f) => f.path));
  for (let i = 0; i < out.length; i++) {
    const path = out[i]!.path;
    if (i > 0 && out[i - 1]!.path === path) throw invalid(path, 'listed twice');
    for (let cut = path.indexOf('/'); cut !== -1; cut = path.indexOf('/', cut + 1)) {
      if (paths.has(path.slice(0, cut))) throw invalid(path, `"${path.slice(0, cut)}" is also a file`);
    }
  }
  return out;
}

const HEADER = Buffer.from('nimbus-artifact-v1\0', 'utf8');
const NUL = Buffer.from([0]);

/**
 * The artifact digest (lowercase hex sha256). Exact byte encoding, version 1:
 *
 *     "nimbus-artifact-v1" 0x00
 *     then for each file, sorted by the UTF-8 bytes of its path:
 *       path (UTF-8) 0x00  mode ("755" or "644", ASCII) 0x00  byte length (decimal ASCII) 0x00  content
 *
 * Paths cannot contain NUL and the content is length-prefixed, so no two trees share an encoding.
 * Timestamps, owners and permission bits other than "executable" are not part of it.
 */
export function artifactDigest(files: readonly ArtifactFile[]): string {
  return digestNormalized(normalizeFiles(files));
}

export function digestNormalized(files: readonly NormalizedFile[]): string {
  const hash = createHash('sha256');
  hash.update(HEADER);
  for (const f of files) {
    hash.update(f.pathBytes);
    hash.update(NUL);
    hash.update(`${f.mode.toString(8)}\0${f.content.length}\0`, 'utf8');
    hash.update(f.content);
  }
  return hash.digest('hex');
}

export const DIGEST_RE = /^[0-9a-f]{64}$/;
