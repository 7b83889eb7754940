/**
 * Builds V8 startup snapshots of node functions (docs/snapshots.md): bundles the snapshot guest
 * with the function's module into one CommonJS entry, then runs `node --build-snapshot` on it in a
 * sandbox like an instance's (the init is user code), with a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, closeSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { NimbusError } from '../../core/errors.js';
import { packageRoot } from '../../core/package-root.js';
import { ENV_KEYS_VAR } from '../guest/protocol.js';
import { heapLimitMb } from '../sandbox/limits.js';
import { createSandbox, type Sandbox, type SandboxOptions, trackTempDir } from '../sandbox/sandbox.js';

/** The guest file bundled into every snapshot entry (scripts/build.mjs builds it). */
export const SNAPSHOT_GUEST = 'snapshot.cjs';
/** The blob's name inside a snapshot artifact. */
export const SNAPSHOT_BLOB = 'snapshot.blob';

/** One function to snapshot. */
export interface SnapshotBuildRequest {
  function: string;
  /** The revision's artifact directory (read-only). */
  artifactDir: string;
  /** The bundled module inside it (NODE_ENTRY). */
  entry: string;
  /** The function's own environment, as its instances get it (the init may read it). */
  env: Record<string, string>;
  memoryMb: number;
  cpu?: number;
  network?: 'none' | 'egress';
}

/** A blob and what making it cost. */
export interface SnapshotBuildResult {
  blob: Buffer;
  buildMs: number;
}

/**
 * Makes snapshot blobs. `build` resolves with the blob, or rejects NimbusError
 * NIMBUS_ERR_SNAPSHOT_FAILED whose message says why in the user's terms (init threw, handles left
 * open, a module that cannot be snapshotted, the deadline passed). Builds may run concurrently.
 */
export interface SnapshotBuilder {
  /** The Node version blobs are made for: a blob loads only in the same version. */
  readonly nodeVersion: string;
  /** sha256 (first 16 hex) of the snapshot guest: a new guest needs new blobs. */
  readonly guestVersion: string;
  /** Whether builds run in bubblewrap with cgroup limits (else: plain processes, with warnings). */
  readonly sandboxed: boolean;
  build(request: SnapshotBuildRequest): Promise<SnapshotBuildResult>;
  close(): void;
}

export interface SnapshotBuilderOptions {
  /** Node binary; must be the one instances run. Default: the current one. */
  nodePath?: string;
  /** Folder of the built guest. Default: dist/guest in the package. */
  guestDir?: string;
  sandbox?: SandboxOptions;
  /** Hard deadline of one build. Default 60 s. */
  timeoutMs?: number;
  /** How long the loop may stay busy after init before the build gives up naming the open handles. Default 5 s. */
  settleMs?: number;
  /** Platform variables under the function's env. Default PATH (the host's), HOME=/tmp, LANG=C.UTF-8. */
  baseEnv?: Record<string, string>;
}

const OUTPUT_LIMIT = 16 * 1024;
/** Exit codes of snapshot-entry.ts: init or a hook failed / handles left open. */
const GUEST_EXIT = { INIT_FAILED: 3, LEFT_OPEN: 4 } as const;

const failed = (message: string, cause?: unknown) =>
  new NimbusError('NIMBUS_ERR_SNAPSHOT_FAILED', message, cause === undefined ? {} : { cause });

/**
 * One CommonJS file: the snapshot guest plus the function's ESM bundle, converted by esbuild.
 * `import.meta.url` (the artifact's require banner uses it) becomes the module's URL as the
 * instance sees it, since CommonJS has no import.meta.
 */
export async function bundleSnapshotEntry(options: {
  guestFile: string;
  moduleFile: string;
  /** The module's path as the build and the restored instances see it. */
  moduleUrlPath: string;
}): Promise<string> {
  const contents = `require(${JSON.stringify(options.guestFile)}).prepareSnapshot(() => require(${JSON.stringify(options.moduleFile)}));`;
  try {
    const result = await build({
      stdin: { contents, resolveDir: dirname(options.moduleFile), loader: 'js', sourcefile: 'snapshot-entry.js' },
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      define: { 'import.meta.url': JSON.stringify(pathToFileURL(options.moduleUrlPath).href) },
      write: false,
      logLevel: 'silent',
    });
    return result.outputFiles[0]!.text;
  } catch (err) {
    const first = (err as { errors?: { text: string }[] }).errors?.[0]?.text ?? (err as Error).message;
    // The usual cause: top-level await, which a CommonJS entry cannot hold.
    throw failed(`The module cannot be bundled as the snapshot's CommonJS entry: ${first}`, err);
  }
}

const UNVERIFIED = /Warning: It's not yet fully verified whether built-in module "(node:[\w/]+)"/g;
/** Node's own noise around those warnings. */
const NOISE =
  /^(\(node:\d+\) Warning: It's not yet fully verified|It may still work in some cases|To request support for the module|\(Use `node --trace-warnings)/;

/** Explains a failed `--build-snapshot` run from its exit and output. */
export function explainFailure(code: number | null, signal: string | null, output: string): string {
  // node:module is the artifact's own require banner, harmless; the others are what the init loaded.
  const risky = [...new Set([...output.matchAll(UNVERIFIED)].map((m) => m[1]!))].filter((m) => m !== 'node:module');
  let hint = risky.length
    ? ` The init loaded ${risky.join(', ')}, which Node cannot put in a snapshot reliably: load it inside the handler or in afterRestore.`
    : '';
  // node:http's own load failing under the snapshot builder (it is what the web globals load).
  if (!hint && /toSorted is not a function|deps\/undici/.test(output))
    hint =
      ' The init used node:http or the web globals built on it (fetch, Request, Response, Headers, FormData),' +
      ' which Node cannot put in a snapshot: create them inside the handler or in afterRestore.';
  const lines = output.split('\n').filter((line) => line.trim() !== '' && !NOISE.test(line));
  const tail = lines.slice(-12).join('\n');
  if (code === GUEST_EXIT.INIT_FAILED || code === GUEST_EXIT.LEFT_OPEN) return `${tail}${hint}`;
  if (/Check failed|not serialized|Unknown external reference|is not supported in the startup snapshot/.test(output))
    return (
      'Node could not serialize the initialised heap: the init used something a snapshot cannot hold ' +
      '(node:http, node:net, worker threads, native addons…).' +
      (hint || ' Load it inside the handler or in afterRestore.')
    );
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  return `node --build-snapshot ${how}${tail ? `: ${tail}` : ''}${hint}`;
}

/** Creates a builder; its sandbox is detected once, as the process provider's is. */
export function createSnapshotBuilder(options: SnapshotBuilderOptions = {}): SnapshotBuilder {
  const nodePath = options.nodePath ?? process.execPath;
  const guestDir = options.guestDir ?? join(packageRoot(), 'dist', 'guest');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const settleMs = options.settleMs ?? 5000;
  const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', ...options.baseEnv };
  const sandbox: Sandbox = createSandbox(options.sandbox);
  let guestVersion: string | undefined;
  const guestFile = () => join(guestDir, SNAPSHOT_GUEST);
  const readGuestVersion = () => {
    try {
      guestVersion ??= createHash('sha256').update(readFileSync(guestFile())).digest('hex').slice(0, 16);
    } catch {
      return 'unbuilt';
    }
    return guestVersion;
  };
  let counter = 0;

  return {
    nodeVersion: process.version,
    get guestVersion() {
      return readGuestVersion();
    },
    sandboxed: sandbox.isolated && sandbox.limited,
    async build(request) {
      if (readGuestVersion() === 'unbuilt')
        throw failed(`The snapshot guest is not built (no ${guestFile()}): run npm run build`);
      const started = performance.now();
      const work = mkdtempSync(join(tmpdir().length < 60 ? tmpdir() : '/tmp', 'nimbus-snap-'));
      const removeWork = trackTempDir(work);
      const runDir = join(work, 'run');
      mkdirSync(runDir, { mode: 0o700 });
      if (sandbox.uid !== undefined) chownSync(runDir, sandbox.uid, sandbox.uid);
      let cgroupRemove: (() => Promise<void>) | undefined;
      try {
        const launch = sandbox.launch({
          name: `snap-${++counter}-${request.function}`,
          memoryMb: request.memoryMb,
          cpu: request.cpu,
          network: request.network,
          artifactDir: request.artifactDir,
          guestDir,
          runDir,
          nodePath,
          hostPath: baseEnv.PATH,
        });
        cgroupRemove = launch.cgroup ? () => launch.cgroup!.remove() : undefined;
        const view = launch.view;
        const insideRun = dirname(view.socketPath);
        const source = await bundleSnapshotEntry({
          guestFile: guestFile(),
          moduleFile: join(request.artifactDir, request.entry),
          moduleUrlPath: join(view.artifactDir, request.entry),
        }).catch((err) => {
          for (const fd of launch.fds) closeSync(fd);
          throw err;
        });
        writeFileSync(join(runDir, 'entry.cjs'), source, { mode: 0o644 });
        const env: Record<string, string> = {
          ...baseEnv,
          PATH: view.PATH,
          ...request.env,
          [ENV_KEYS_VAR]: JSON.stringify(Object.keys(request.env)),
          NIMBUS_FUNCTION: request.function,
          NIMBUS_INSTANCE: 'snapshot-build',
          NIMBUS_MEMORY_MB: String(request.memoryMb),
          NIMBUS_SNAPSHOT_SETTLE_MS: String(settleMs),
        };
        const argv = [
          view.nodePath,
          `--max-old-space-size=${heapLimitMb(request.memoryMb)}`,
          '--snapshot-blob',
          join(insideRun, SNAPSHOT_BLOB),
          '--build-snapshot',
          join(insideRun, 'entry.cjs'),
        ];
        const { command, args } = launch.wrap(argv);
        let child: ChildProcess;
        try {
          child = spawn(command, args, {
            env,
            cwd: sandbox.isolated ? '/' : request.artifactDir,
            // fd 3 unused (instances get their readiness pipe there); the bind fds follow from 4.
            stdio: ['ignore', 'pipe', 'pipe', 'ignore', ...launch.fds],
            detached: true,
          });
        } finally {
          for (const fd of launch.fds) closeSync(fd);
        }
        const { code, signal, output, timedOut } = await run(child, timeoutMs);
        if (timedOut)
          throw failed(
            `The snapshot build did not finish within ${Math.round(timeoutMs / 1000)} s: the init never settles ` +
              '(a timer, server or connection left open keeps it waiting)',
          );
        if (code !== 0) throw failed(explainFailure(code, signal, output));
        const blob = await readFile(join(runDir, SNAPSHOT_BLOB)).catch((err) => {
          throw failed(`node --build-snapshot wrote no blob: ${(err as Error).message}`, err);
        });
        return { blob, buildMs: Math.round(performance.now() - started) };
      } catch (err) {
        if (err instanceof NimbusError) throw err;
        throw failed(`Cannot build the snapshot: ${(err as Error).message}`, err);
      } finally {
        await cgroupRemove?.().catch(() => {});
        removeWork();
      }
    },
    close() {
      sandbox.close();
    },
  };
}

/** Waits for the build process, collecting its output; kills its group at the deadline. */
function run(
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ code: number | null; signal: string | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let timedOut = false;
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, output: `${output}${err.message}`, timedOut });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      kill(); // whatever the build left in its group
      resolve({ code, signal, output, timedOut });
    });
  });
}
