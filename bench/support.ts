import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');

/** Spawns a process and resolves once a line of its stdout matches `ready`. */
export function spawnUntil(
  cmd: string,
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
  });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const match = ready.exec(out);
      if (match) resolve({ child, match });
    });
    child.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before ready: ${out}`)));
  });
}

/**
 * The hello fixture in a bare guest process (`root`'s dist/guest/function.mjs, no sandbox, no
 * node), serving the framed channel on `socketPath`; resolves once it reported ready.
 */
export async function startBareGuest(
  root: string,
  socketPath: string,
  nodeFlags: string[] = [],
): Promise<ChildProcess> {
  const guest = spawn(process.execPath, [...nodeFlags, join(root, 'dist/guest/function.mjs')], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      NIMBUS_MODULE: join(ROOT, 'bench/fixtures/hello/index.js'),
      NIMBUS_SOCKET: socketPath,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  });
  await once(guest.stdio[3]!, 'data');
  return guest;
}

/** A Nimbus node as its own process, with a temp data dir; `root` is the checkout to run (built). */
export async function startNimbusProcess(
  root = ROOT,
  extraArgs: string[] = [],
): Promise<{ url: string; child: ChildProcess }> {
  const data = mkdtempSync(join(tmpdir(), 'nimbus-bench-'));
  const { child, match } = await spawnUntil(
    process.execPath,
    [join(root, 'bin/nimbus.js'), 'serve', '--port', '0', '--data', data, '--no-examples', ...extraArgs],
    /listening on (http:\/\/[\d.:]+)/,
  );
  return { url: match[1]!, child };
}

export async function deploy(url: string, dir: string, config: Record<string, unknown>): Promise<string> {
  const { packDirectory } = await import('../src/cli/pack.js');
  const { archive } = await packDirectory(dir);
  const res = await fetch(`${url}/api/v1/functions?config=${encodeURIComponent(JSON.stringify(config))}`, {
    method: 'POST',
    body: archive,
  });
  const body = (await res.json()) as { revision: string; error?: unknown };
  if (res.status >= 300) throw new Error(`deploy failed: ${JSON.stringify(body)}`);
  return body.revision;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A side-by-side mode of a bench: `once` measures one run (milliseconds). */
export interface BenchMode {
  name: string;
  setup?(): Promise<void>;
  once(run: number): Promise<number>;
  teardown?(): Promise<void>;
}

/**
 * Runs every mode `runs` times, interleaved (run i of every mode, then run i + 1, so load on the
 * machine hits every mode alike), and prints a markdown table of p50 / p95 and the p50 ratio to
 * `base`. Returns the times per mode.
 */
export async function runModes(
  modes: BenchMode[],
  runs: number,
  base: BenchMode,
  options: { baseName?: string; digits?: number } = {},
): Promise<Map<BenchMode, number[]>> {
  const times = new Map<BenchMode, number[]>(modes.map((m) => [m, []]));
  for (const mode of modes) await mode.setup?.();
  try {
    for (let i = 0; i < runs; i++) for (const mode of modes) times.get(mode)!.push(await mode.once(i));
  } finally {
    for (const mode of modes) await mode.teardown?.();
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { p50: percentile(s, 50), p95: percentile(s, 95) };
  };
  const digits = options.digits ?? 1;
  const p50 = stats(times.get(base)!).p50;
  console.log(`${runs} runs each, interleaved; milliseconds`);
  console.log(`| mode | p50 ms | p95 ms | p50 vs ${options.baseName ?? base.name} |\n| --- | --- | --- | --- |`);
  for (const mode of modes) {
    const s = stats(times.get(mode)!);
    console.log(
      `| ${mode.name} | ${s.p50.toFixed(digits)} | ${s.p95.toFixed(digits)} | ${(s.p50 / p50).toFixed(2)}× |`,
    );
  }
  return times;
}
