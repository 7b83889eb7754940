import type { ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { NimbusError } from '../../core/errors.js';
import { packageRoot } from '../../core/package-root.js';
import { ENV_KEYS_VAR, type ReadyMessage } from '../guest/protocol.js';
import { heapLimitMb } from '../sandbox/limits.js';
import type { InstanceSpec } from '../types.js';

/** What to run for one instance: the guest (function framework or watchdog) and its environment. */
export interface SpawnPlan {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** Provider settings that shape every spawn. */
export interface SpawnContext {
  nodePath: string;
  /** Directory holding function.mjs and watchdog.mjs. */
  guestDir: string;
  /** Platform variables under the function's env (PATH, HOME, LANG…). */
  baseEnv: Record<string, string>;
}

/** The spawn context from a provider's options: the current node, dist/guest, PATH/HOME/LANG under `baseEnv`. */
export function spawnContext(options: {
  nodePath?: string;
  guestDir?: string;
  baseEnv?: Record<string, string>;
}): SpawnContext {
  return {
    nodePath: options.nodePath ?? process.execPath,
    guestDir: options.guestDir ?? join(packageRoot(), 'dist', 'guest'),
    baseEnv: {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: '/tmp',
      LANG: 'C.UTF-8',
      ...options.baseEnv,
    },
  };
}

/**
 * Path of a built guest entry: `NAME.mjs`, or `NAME.js` (esbuild's default extension for
 * `outdir`, ESM too since package.json says "type": "module"). Throws when neither exists.
 */
export function guestFile(dir: string, name: 'function' | 'watchdog' | 'cell'): string {
  // Both may exist after a change of build settings: the newer one is the current build.
  const found = ['.mjs', '.js'].map((ext) => join(dir, name + ext)).filter((file) => existsSync(file));
  if (found.length === 1) return found[0]!;
  if (found.length === 2) return statSync(found[0]!).mtimeMs >= statSync(found[1]!).mtimeMs ? found[0]! : found[1]!;
  throw new NimbusError(
    'NIMBUS_ERR_INTERNAL',
    `The guest runtime is not built (no ${name}.mjs in ${dir}): run npm run build`,
  );
}

/**
 * How the instance sees its own paths. Unsandboxed they are the host's; in bubblewrap they are the
 * fixed INSIDE paths (sandbox/bwrap.ts), so nothing of the host layout leaks into the instance.
 */
export interface InstanceView {
  artifactDir: string;
  guestDir: string;
  socketPath: string;
  nodePath: string;
  /** PATH inside (default: baseEnv's). */
  PATH?: string;
  /** App mode: the command to run (default: the spec's), e.g. with its program resolved. */
  command?: string[];
}

/**
 * The command line and a minimal explicit environment. process.env is never inherited: the
 * machine's NODE_EXTRA_CA_CERTS alone nearly doubles Node's start time (ARCHITECTURE.md).
 * `ctx.guestDir` is where the guest is looked for on the host; `view` how the instance sees it.
 */
export function planSpawn(spec: InstanceSpec, view: InstanceView, ctx: SpawnContext): SpawnPlan {
  const env: Record<string, string> = {
    ...ctx.baseEnv,
    ...(view.PATH ? { PATH: view.PATH } : {}),
    ...spec.env,
    [ENV_KEYS_VAR]: JSON.stringify(Object.keys(spec.env)),
    NIMBUS_SOCKET: view.socketPath,
    NIMBUS_FUNCTION: spec.function,
    NIMBUS_REVISION: spec.revision,
    NIMBUS_INSTANCE: spec.id,
    NIMBUS_MEMORY_MB: String(spec.memoryMb),
    NIMBUS_TIMEOUT_MS: String(spec.timeoutMs),
  };
  const guest = (name: 'function' | 'watchdog') => join(view.guestDir, basename(guestFile(ctx.guestDir, name)));
  if (spec.kind === 'app') {
    const command = view.command ?? spec.command;
    if (!command?.length)
      throw new NimbusError('NIMBUS_ERR_START_FAILED', `Instance ${spec.id}: app mode needs a command`);
    env.NIMBUS_COMMAND = JSON.stringify(command);
    return { command: view.nodePath, args: [guest('watchdog')], env, cwd: view.artifactDir };
  }
  if (!spec.entry)
    throw new NimbusError('NIMBUS_ERR_START_FAILED', `Instance ${spec.id}: a node function needs an entry module`);
  env.NIMBUS_MODULE = join(view.artifactDir, spec.entry);
  if (spec.snapshotBlob) {
    // Restored from a V8 startup snapshot (docs/snapshots.md): the blob holds the guest and the
    // initialised module. The heap flag must equal the build's: V8 refuses a blob made with others.
    const blob = join(view.artifactDir, spec.snapshotBlob);
    const args = [`--max-old-space-size=${heapLimitMb(spec.memoryMb)}`, '--snapshot-blob', blob];
    return { command: view.nodePath, args, env, cwd: view.artifactDir };
  }
  return {
    command: view.nodePath,
    args: [`--max-old-space-size=${heapLimitMb(spec.memoryMb)}`, guest('function')],
    env,
    cwd: view.artifactDir,
  };
}

/**
 * A pool cell (guest/cell.ts): the function framework with no function yet, so only the platform's
 * base variables (no NIMBUS_* of any function). Its V8 heap limit is fixed at spawn (V8 cannot
 * change it later), which is why cells are kept per memory size.
 */
export function planCell(memoryMb: number, view: InstanceView, ctx: SpawnContext): SpawnPlan {
  return {
    command: view.nodePath,
    args: [
      `--max-old-space-size=${heapLimitMb(memoryMb)}`,
      join(view.guestDir, basename(guestFile(ctx.guestDir, 'cell'))),
    ],
    env: { ...ctx.baseEnv, ...(view.PATH ? { PATH: view.PATH } : {}) },
    cwd: view.artifactDir,
  };
}

/** Limits of the wait for readiness. */
export interface ReadyWait {
  timeoutMs: number;
  signal?: AbortSignal;
  /** The last output lines, quoted when the process dies without a word. */
  tail: () => string[];
}

/**
 * Resolves when the guest writes `{"ready":true}` on fd 3; rejects with START_FAILED when it
 * reports an error, exits first, the timeout passes or `signal` aborts (miniflare's readiness race).
 * The caller kills the process on rejection.
 */
export function waitReady(child: ChildProcess, wait: ReadyWait): Promise<ReadyMessage> {
  const pipe = child.stdio[3] as Readable;
  return new Promise<ReadyMessage>((resolve, reject) => {
    let text = '';
    const fail = (message: string, cause?: unknown) => {
      cleanup();
      const tail = wait.tail();
      const detail = tail.length > 0 && !message.includes(tail.at(-1)!) ? `\n${tail.join('\n')}` : '';
      reject(new NimbusError('NIMBUS_ERR_START_FAILED', `${message}${detail}`, { cause }));
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl === -1) return;
      let msg: ReadyMessage;
      try {
        msg = JSON.parse(text.slice(0, nl));
      } catch {
        return fail(`The instance wrote an unreadable readiness line: ${text.slice(0, 200)}`);
      }
      if (!msg.ready) return fail(msg.error ?? 'The instance reported it cannot start');
      cleanup();
      resolve(msg);
    };
    const onExit = (code: number | null, sig: string | null) =>
      fail(`The instance ${code !== null ? `exited with code ${code}` : `was killed by ${sig}`} before it was ready`);
    const onError = (err: Error) => fail(`Cannot start the instance: ${err.message}`, err);
    const onAbort = () => fail('The start was aborted', wait.signal?.reason);
    const timer = setTimeout(() => fail(`The instance was not ready within ${wait.timeoutMs} ms`), wait.timeoutMs);
    function cleanup(): void {
      clearTimeout(timer);
      pipe.off('data', onData);
      child.off('close', onExit);
      child.off('error', onError);
      wait.signal?.removeEventListener('abort', onAbort);
    }
    pipe.on('data', onData);
    // 'close', not 'exit': it comes after fd 3 is drained, so a `ready:false` line is never lost.
    child.once('close', onExit);
    child.once('error', onError);
    if (wait.signal?.aborted) onAbort();
    else wait.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
