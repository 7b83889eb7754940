/**
 * Outbound network for a restored `network: egress` instance (docs/criu.md). The dump copy runs in
 * a private network namespace with only loopback, and every restore gets a fresh empty one (so two
 * restores never share the app's port); after the restore, slirp4netns — a userspace TCP/IP stack,
 * rootless podman's way — plugs a tap device into that namespace and carries its traffic out
 * through ordinary sockets of the host. No host iptables, sysctl or bridge changes: one small
 * process per instance, in the instance's cgroup, that ends with it (and with Nimbus: --exit-fd).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { JOIN_SCRIPT } from '../sandbox/bwrap.js';
import { findProgram } from './detect.js';

/** The slirp4netns binary, or undefined when it is not installed. */
export const findSlirp = (): string | undefined => findProgram('slirp4netns');

/** Why restores of egress functions are off when slirp4netns is missing (`nimbus get`). */
export const NO_SLIRP_REASON =
  'CRIU restores of network: egress functions need slirp4netns, which is not installed (apt-get install slirp4netns)';

/** The descriptors slirp4netns gets: it exits when 3 reaches end of file, it writes "1" to 4 once configured. */
const EXIT_FD = 3;
const READY_FD = 4;

/**
 * slirp4netns arguments (pure, tested as data). `--disable-host-loopback`: the node's own
 * 127.0.0.1 services (a database, the Nimbus API) stay out of reach through 10.0.2.2 — a deliberate
 * tenant-isolation choice, see docs/criu.md. `--enable-sandbox --enable-seccomp`: slirp runs as
 * root (it must enter the instance's namespace), so once configured it pivots into an empty root,
 * keeps only CAP_NET_BIND_SERVICE and filters its own system calls (≈ 1 ms more, measured).
 */
export function slirpArgs(pid: number): string[] {
  return [
    '--configure',
    '--mtu=65520',
    '--disable-host-loopback',
    '--enable-sandbox',
    '--enable-seccomp',
    `--exit-fd=${EXIT_FD}`,
    `--ready-fd=${READY_FD}`,
    String(pid),
    'tap0',
  ];
}

/** A running slirp4netns attached to one instance. */
export interface Egress {
  readonly pid: number;
  /** Ends it (closing its exit descriptor, SIGKILL if that is not enough) and waits until it is gone. */
  close(): Promise<void>;
}

function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('close', () => resolve()));
}

/**
 * Attaches outbound network to the network namespace of `pid` and resolves once it is configured
 * (tap0 up with 10.0.2.100/24, default route via 10.0.2.2). slirp4netns joins `procsFiles` (the
 * instance's cgroup) first, so its memory is counted there and the cgroup's removal ends it.
 * Rejects with slirp's last output lines when it fails or takes longer than `timeoutMs`.
 */
export async function attachEgress(o: {
  slirpPath: string;
  pid: number;
  procsFiles: string[];
  timeoutMs: number;
}): Promise<Egress> {
  // Own process group: a Ctrl-C at Nimbus's terminal must not take an instance's network away.
  const child = spawn(
    '/bin/sh',
    ['-c', JOIN_SCRIPT, 'nimbus-slirp', ...o.procsFiles, '--', o.slirpPath, ...slirpArgs(o.pid)],
    {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      detached: true,
    },
  );
  // Its output is startup chatter, kept for the error message; always drained so it never blocks.
  let output = '';
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => (output = (output + d).slice(-2000)));
  const exitPipe = child.stdio[EXIT_FD] as Writable;
  const close = async () => {
    exitPipe.destroy();
    // JOIN_SCRIPT ignores SIGTERM (inherited by slirp4netns), so SIGKILL if the exit fd did not do it.
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    }, 1000);
    await ended(child);
    clearTimeout(timer);
  };
  const ready = await new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), o.timeoutMs);
    (child.stdio[READY_FD] as Readable).once('data', () => done(true));
    child.once('close', () => done(false));
    child.once('error', () => done(false));
  });
  if (!ready || child.pid === undefined) {
    await close();
    const lines = output.trim().split('\n').filter(Boolean).slice(-3).join('; ');
    throw new Error(`slirp4netns did not attach the network (exit ${child.exitCode ?? child.signalCode}): ${lines}`);
  }
  (child.stdio[READY_FD] as Readable).destroy();
  return { pid: child.pid, close };
}
