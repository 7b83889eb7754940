// Helpers for the build tests (not part of the public surface): real tar.gz archives, made with
// the `tar` package from fixture folders, or block by block for hostile entries tar.c would refuse.
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create, Header, type HeaderData } from 'tar';
import { packageRoot } from '../core/package-root.js';

/** test/fixtures/sources/NAME */
export const fixtureDir = (name: string): string => join(packageRoot(), 'test', 'fixtures', 'sources', name);

/** The folder as a gzip-compressed tar, the way the CLI packs it (entries start with `./`). */
export async function packDir(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of create({ gzip: true, cwd: dir, portable: true }, ['.'])) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface RawEntry extends HeaderData {
  path: string;
  content?: string | Buffer;
}

/** A tar.gz holding exactly these headers and contents, with no checks (for hostile archives). */
export function rawTarGz(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { content, ...data } of entries) {
    const body = Buffer.from(content ?? '');
    const header = Buffer.alloc(512);
    new Header({ mode: 0o644, mtime: new Date(0), type: 'File', ...data, size: body.length }).encode(header, 0);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}
