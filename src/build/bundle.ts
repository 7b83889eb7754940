import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build, type Message } from 'esbuild';
import { NimbusError } from '../core/errors.js';
import type { FunctionConfig } from '../core/types.js';
import type { ArtifactFile } from '../store/types.js';
import type { SourceFile } from './archive.js';

/** What a build produces: the artifact's files, and for node the module to load from it. */
export interface BuildResult {
  files: ArtifactFile[];
  /** node: 'index.mjs'; app: undefined (the command runs from the artifact root). */
  entry?: string;
}

/** The bundled module's name inside a node artifact. */
export const NODE_ENTRY = 'index.mjs';

// An ESM bundle has no `require`, yet bundled CommonJS code calls it for Node built-ins (esbuild's
// __require shim looks for a global `require`). The import is aliased: the plain name
// `createRequire` would collide with a user module that imports it under that name itself.
const REQUIRE_BANNER =
  "import { createRequire as __nimbusCreateRequire } from 'node:module'; const require = __nimbusCreateRequire(import.meta.url);";

/**
 * Turns a source tree into an artifact. runtime node: bundles `config.handler` with esbuild into
 * one ESM file `index.mjs` (+ `index.mjs.map`) for Node 20, and checks that it exports `default`
 * or `handler` (NIMBUS_ERR_HANDLER_NOT_FOUND otherwise). runtime app: the tree as it is, keeping
 * the executable bit. Throws NIMBUS_ERR_BUILD_FAILED with `details: {file, line, column}` (1-based)
 * for source errors, NIMBUS_ERR_INVALID_MANIFEST when the handler file is missing.
 */
export async function buildArtifact(files: readonly SourceFile[], config: FunctionConfig): Promise<BuildResult> {
  if (config.runtime === 'app') {
    return { files: files.map((f) => ({ path: f.path, mode: f.mode & 0o111 ? 0o755 : 0o644, content: f.content })) };
  }
  const handler = config.handler;
  if (!handler || !files.some((f) => f.path === handler)) {
    throw new NimbusError(
      'NIMBUS_ERR_INVALID_MANIFEST',
      `handler: file ${JSON.stringify(handler)} not found in the source`,
      {
        details: { field: 'handler', file: handler },
      },
    );
  }

  const work = await mkdtemp(join(tmpdir(), 'nimbus-build-'));
  try {
    const src = join(work, 'src');
    for (const f of files) {
      // Paths come from unpackArchive (relative, no `..`); join cannot leave `src`.
      const target = join(src, f.path);
      if (!target.startsWith(`${src}/`)) throw new NimbusError('NIMBUS_ERR_INVALID_ARCHIVE', `Invalid path: ${f.path}`);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, f.content, { mode: f.mode & 0o777 });
    }
    return await bundle(src, join(work, 'out'), handler, config.runtime === 'isolate');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function bundle(src: string, out: string, handler: string, isolate: boolean): Promise<BuildResult> {
  const outfile = join(out, NODE_ENTRY);
  let result: Awaited<ReturnType<typeof build<{ metafile: true; write: false }>>>;
  try {
    result = await build({
      absWorkingDir: src,
      entryPoints: [handler],
      bundle: true,
      // runtime isolate: no Node built-ins inside a V8 isolate, so packages resolve their
      // worker/browser builds and an import of `node:*` fails the build (docs/isolate.md).
      ...(isolate
        ? { platform: 'browser' as const, conditions: ['workerd', 'worker', 'browser'], target: 'es2022' }
        : { platform: 'node' as const, target: 'node20', banner: { js: REQUIRE_BANNER } }),
      format: 'esm',
      outfile,
      sourcemap: 'linked',
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
  } catch (err) {
    throw buildFailure(err);
  }

  const meta = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined);
  const exported = meta?.exports ?? [];
  if (isolate && !exported.includes('default')) {
    throw new NimbusError(
      'NIMBUS_ERR_HANDLER_NOT_FOUND',
      `${handler} does not export \`default\`: runtime isolate runs fetch handlers only (\`export default { fetch(request, env, ctx) }\`); Lambda-style \`handler\` exports need runtime node`,
      { details: { file: handler, exports: exported } },
    );
  }
  if (!exported.includes('default') && !exported.includes('handler')) {
    const found = exported.length ? `it exports: ${exported.join(', ')}` : 'it exports nothing';
    throw new NimbusError(
      'NIMBUS_ERR_HANDLER_NOT_FOUND',
      `${handler} does not export \`default\` (a fetch handler) or \`handler\` (Lambda style); ${found}`,
      { details: { file: handler, exports: exported } },
    );
  }
  const artifact = result.outputFiles.map((f) => ({
    path: f.path.slice(out.length + 1),
    mode: 0o644,
    content: Buffer.from(f.contents),
  }));
  return { files: artifact, entry: NODE_ENTRY };
}

/** esbuild's failure as NIMBUS_ERR_BUILD_FAILED: "index.ts:3:7: Expected ";" but found "x"". */
function buildFailure(err: unknown): NimbusError {
  const errors: Message[] = (err as { errors?: Message[] }).errors ?? [];
  const first = errors[0];
  if (!first)
    return new NimbusError('NIMBUS_ERR_BUILD_FAILED', `Build failed: ${(err as Error).message}`, { cause: err });
  const loc = first.location;
  // esbuild columns are 0-based; editors and people count from 1.
  const where = loc ? `${loc.file}:${loc.line}:${loc.column + 1}: ` : '';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
  return new NimbusError('NIMBUS_ERR_BUILD_FAILED', `${where}${first.text}${more}`, {
    cause: err,
    details: loc ? { file: loc.file, line: loc.line, column: loc.column + 1, lineText: loc.lineText } : {},
  });
}
