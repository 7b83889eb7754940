/**
 * Is there a CRIU here that can checkpoint and restore Nimbus's sandboxed app instances? Asked
 * once per process (`criu check` and a probe dump take ≈ 0.1–0.2 s) and cached. CRIU is an optional accelerator: when
 * the answer is no, instances start normally and the reason is shown (docs/criu.md).
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** What the machine offers for checkpoint/restore. */
export interface CriuSupport {
  /** A working criu binary (`criu check` passed). */
  available: boolean;
  /** Absolute path of the binary, when found. */
  path?: string;
  /** e.g. "4.1.1". */
  version?: string;
  /** Why it cannot be used, one sentence, when `available` is false. */
  reason?: string;
}

/** Where programs are looked for besides PATH (scripts/install-criu.sh installs to /usr/local/sbin). */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** An executable `name` on `pathEnv` or in the sbin directories (Nimbus may run with a user's PATH). */
export function findProgram(name: string, pathEnv = process.env.PATH ?? ''): string | undefined {
  for (const dir of [...pathEnv.split(delimiter), ...SBIN]) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {}
  }
  return undefined;
}

/** Runs the detection now (uncached); `criuPath` skips the search. */
export function detectCriu(
  options: { criuPath?: string; pathEnv?: string; probeTimeoutMs?: number } = {},
): CriuSupport {
  if (process.platform !== 'linux') return { available: false, reason: 'CRIU only runs on Linux' };
  if (process.geteuid?.() !== 0) return { available: false, reason: 'Nimbus does not run as root (CRIU needs it)' };
  const path = options.criuPath ?? findProgram('criu', options.pathEnv);
  if (!path) return { available: false, reason: 'criu is not installed (scripts/install-criu.sh builds one)' };
  const version = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const found = /Version:\s*(\S+)/.exec(version.stdout ?? '')?.[1];
  const check = spawnSync(path, ['check'], { encoding: 'utf8', timeout: 20_000 });
  if (check.status !== 0) {
    const why = `${check.stderr ?? ''}${check.stdout ?? ''}`.trim().split('\n').filter(Boolean).at(-1);
    return { available: false, path, version: found, reason: `criu check fails: ${why ?? check.error?.message}` };
  }
  const dumped = probeDump(path, options.probeTimeoutMs ?? PROBE_TIMEOUT_MS);
  if (dumped) return { available: false, path, version: found, reason: dumped };
  return { available: true, path, ...(found ? { version: found } : {}) };
}

/** How long the probe's dump of `sleep` may take (it takes ≈ 0.1 s where CRIU works). */
const PROBE_TIMEOUT_MS = 5000;

/**
 * Dumps a throwaway `sleep`: `criu check` passes on kernels where every real dump then hangs
 * (Linux 6.18 here: the parasite never returns, the dump waits forever), and a checkpoint that
 * never ends would hold a deploy's snapshot and the tests. Returns why it failed, or undefined.
 */
function probeDump(criu: string, timeoutMs: number): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-criu-probe-'));
  // Its own session, no terminal: what CRIU dumps without --shell-job tricks.
  const sleeper = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  try {
    if (!sleeper.pid) return 'could not start a test process for the criu probe';
    const dump = spawnSync(criu, ['dump', '-t', String(sleeper.pid), '-D', dir, '--shell-job'], {
      encoding: 'utf8',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    if (dump.error && (dump.error as NodeJS.ErrnoException).code === 'ETIMEDOUT')
      return `criu dump of a test process did not finish within ${timeoutMs / 1000} s on Linux ${release()}: CRIU hangs on this kernel`;
    if (dump.status !== 0) {
      const why = `${dump.stderr ?? ''}`.trim().split('\n').filter(Boolean).at(-1);
      return `criu dump of a test process fails: ${why ?? dump.error?.message ?? `exit ${dump.status}`}`;
    }
    return undefined;
  } finally {
    try {
      sleeper.kill('SIGKILL');
    } catch {}
    sleeper.unref();
    rmSync(dir, { recursive: true, force: true });
  }
}

let cached: CriuSupport | undefined;

/** The detection, run on first use and remembered for the life of the process. */
export function criuSupport(): CriuSupport {
  cached ??= detectCriu();
  return cached;
}
