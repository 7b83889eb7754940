/**
 * Is there a CRIU here that can checkpoint and restore Nimbus's sandboxed app instances? Asked
 * once per process (`criu check` and a probe dump take ≈ 0.1–0.2 s) and cached. CRIU is an optional accelerator: when
 * the answer is no, instances start normally and the reason is shown (docs/criu.md). Every step
 * runs as a child process the event loop does not wait on: where dumps hang, the probe takes its
 * whole 5 s, and the node goes on serving meanwhile.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

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

/** What a program printed and how it ended; `timedOut` when it was killed for taking too long. */
interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  error?: Error;
}

/** Runs `file` to its end (SIGKILL after `timeoutMs`), without holding the event loop. */
function run(file: string, args: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ status: null, stdout, stderr, timedOut, error });
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, timedOut });
    });
  });
}

/** Runs the detection now (uncached); `criuPath` skips the search. */
export async function detectCriu(
  options: {
    criuPath?: string;
    pathEnv?: string;
    probeTimeoutMs?: number;
    /** Where the probe's verdict is kept until the next boot; `false`: probe every time. */
    probeCache?: string | false;
  } = {},
): Promise<CriuSupport> {
  if (process.platform !== 'linux') return { available: false, reason: 'CRIU only runs on Linux' };
  if (process.geteuid?.() !== 0) return { available: false, reason: 'Nimbus does not run as root (CRIU needs it)' };
  const path = options.criuPath ?? findProgram('criu', options.pathEnv);
  if (!path) return { available: false, reason: 'criu is not installed (scripts/install-criu.sh builds one)' };
  const version = await run(path, ['--version'], 5000);
  const found = /Version:\s*(\S+)/.exec(version.stdout)?.[1];
  const check = await run(path, ['check'], 20_000);
  if (check.status !== 0) {
    const why = `${check.stderr}${check.stdout}`.trim().split('\n').filter(Boolean).at(-1);
    const failure = why ?? check.error?.message ?? (check.timedOut ? 'it did not finish within 20 s' : 'no output');
    return { available: false, path, version: found, reason: `criu check fails: ${failure}` };
  }
  const cacheFile = options.probeCache ?? PROBE_CACHE;
  const key = cacheFile ? probeKey(path) : undefined;
  let dumped = key ? cachedVerdict(cacheFile as string, key) : undefined;
  if (dumped === undefined) {
    dumped = (await probeDump(path, options.probeTimeoutMs ?? PROBE_TIMEOUT_MS)) ?? null;
    if (key) saveVerdict(cacheFile as string, key, dumped);
  }
  if (dumped) return { available: false, path, version: found, reason: dumped };
  return { available: true, path, ...(found ? { version: found } : {}) };
}

/** How long the probe's dump of `sleep` may take (it takes ≈ 0.1 s where CRIU works). */
const PROBE_TIMEOUT_MS = 5000;

/**
 * The probe's verdict, kept an hour for this boot (`/run` is a tmpfs only root writes): on a kernel
 * where dumps hang, each node process would otherwise stall its event loop for the probe's 5 s
 * once. An hour, not the boot: a dump that was only slow (a machine loaded past 5 s) is retried.
 */
const PROBE_CACHE = '/run/nimbus/criu-probe.json';
const PROBE_KEPT_MS = 60 * 60 * 1000;

/** What the verdict holds for: this boot (kernel), this criu binary. */
function probeKey(criu: string): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const { size, mtimeMs } = statSync(criu);
    return `${boot} ${criu} ${size} ${mtimeMs}`;
  } catch {
    return undefined;
  }
}

/** The kept verdict for `key`: null (dumps work), the reason they do not, or undefined (none kept). */
function cachedVerdict(file: string, key: string): string | null | undefined {
  try {
    const kept = JSON.parse(readFileSync(file, 'utf8')) as { key?: string; at?: number; reason?: string | null };
    const fresh = kept.key === key && typeof kept.at === 'number' && Date.now() - kept.at < PROBE_KEPT_MS;
    return fresh && (kept.reason === null || typeof kept.reason === 'string') ? kept.reason : undefined;
  } catch {
    return undefined;
  }
}

function saveVerdict(file: string, key: string, reason: string | null): void {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify({ key, at: Date.now(), reason }), { mode: 0o600 });
  } catch {
    // Not writable: the next process probes again.
  }
}

/**
 * Dumps a throwaway `sleep`: `criu check` passes on kernels where every real dump then hangs
 * (Linux 6.18 here: the parasite never returns, the dump waits forever), and a checkpoint that
 * never ends would hold a deploy's snapshot and the tests. Returns why it failed, or undefined.
 */
async function probeDump(criu: string, timeoutMs: number): Promise<string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-criu-probe-'));
  // Its own session, no terminal: what CRIU dumps without --shell-job tricks.
  const sleeper = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  try {
    if (!sleeper.pid) return 'could not start a test process for the criu probe';
    const dump = await run(criu, ['dump', '-t', String(sleeper.pid), '-D', dir, '--shell-job'], timeoutMs);
    if (dump.timedOut)
      return `criu dump of a test process did not finish within ${timeoutMs / 1000} s on Linux ${release()}: CRIU hangs on this kernel`;
    if (dump.status !== 0) {
      const why = dump.stderr.trim().split('\n').filter(Boolean).at(-1);
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

let cached: Promise<CriuSupport> | undefined;

/** The detection, run on first use and remembered for the life of the process. */
export function criuSupport(): Promise<CriuSupport> {
  cached ??= detectCriu();
  return cached;
}
