/**
 * One instance restored from a revision's CRIU image: `criu restore -d` recreates the dumped tree
 * in fresh pid, mount, ipc, uts and network namespaces (so any number of restores of one image run
 * side by side), inside the instance's own cgroup (criu joins it first and its children stay),
 * with the instance's own socket directory bound at /nimbus/run and its stdout/stderr plugged in
 * place of the dumped pipes. A `network: egress` instance then gets its outbound network from a
 * slirp4netns of its own (network.ts). The restored watchdog is listening already: the host just
 * connects.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NimbusError } from '../../core/errors.js';
import { type Channel, createChannel } from '../process/channel.js';
import { readLines } from '../process/lines.js';
import { JOIN_SCRIPT } from '../sandbox/bwrap.js';
import type { InstanceCgroup } from '../sandbox/cgroups.js';
import type { Instance, InstanceSpec, InstanceState } from '../types.js';
import { type CheckpointMeta, criuErrors, IMAGE_DIR, ROOT_DIR } from './checkpoint.js';
import { attachEgress, type Egress } from './network.js';
import { writeInstanceResolvConf } from './resolv.js';

/**
 * criu's action script for `--empty-ns net`: the network namespace of a `network: none` instance
 * holds only loopback, so instead of replaying its configuration (five `ip` runs, ≈ 20 ms of a
 * restore here) the restore makes it empty and this brings loopback up before sockets are bound.
 */
export const LOOPBACK_SCRIPT =
  '#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = setup-namespaces ] || exit 0\nexec nsenter -t "$CRTOOLS_INIT_PID" -n ip link set lo up\n';

/** The criu restore arguments (pure, tested as data). */
export function restoreArgs(o: {
  image: string;
  meta: CheckpointMeta;
  workDir: string;
  runDir: string;
  etcDir: string;
  /** The instance's resolv.conf (resolv.ts), mapped in at /etc/resolv.conf. */
  resolvConf: string;
  /** LOOPBACK_SCRIPT on disk: the network namespace is made empty and only loopback brought up. */
  loopbackScript?: string;
}): string[] {
  return [
    'restore',
    '-D',
    join(o.image, IMAGE_DIR),
    '-W',
    o.workDir,
    '-o',
    'restore.log',
    '-v2',
    '-d',
    '--pidfile',
    join(o.workDir, 'pid'),
    '--root',
    join(o.image, ROOT_DIR),
    '--network-lock',
    'skip',
    '--tcp-established',
    '--ext-mount-map',
    'auto',
    '--manage-cgroups=ignore',
    ...(o.loopbackScript ? ['--empty-ns', 'net', '--action-script', o.loopbackScript] : []),
    '--inherit-fd',
    `fd[1]:${o.meta.pipes[0]}`,
    '--inherit-fd',
    `fd[2]:${o.meta.pipes[1]}`,
    '--external',
    `mnt[run]:${o.runDir}`,
    '--external',
    `mnt[passwd]:${join(o.etcDir, 'passwd')}`,
    '--external',
    `mnt[group]:${join(o.etcDir, 'group')}`,
    '--external',
    `mnt[resolv]:${o.resolvConf}`,
  ];
}

/** A restored instance, as the provider tracks it. */
export interface RestoredInstance extends Instance {
  state: InstanceState;
  /** Host pid of the restored sandbox's init (the watchdog). */
  readonly pid: number;
  /** Resolves when every restored process is gone (their stdout and stderr closed). */
  readonly gone: Promise<void>;
  readonly channel: Channel;
  readonly cgroup?: InstanceCgroup;
  /** The slirp4netns giving a `network: egress` instance its outbound network. */
  readonly egress?: Egress;
  /** Ends the network helper, removes the instance's directories and cgroup (after `gone`). */
  cleanup(): Promise<void>;
}

export interface RestoreRequest {
  criuPath: string;
  /** The checkpoint directory (img/, root/, meta.json). */
  image: string;
  meta: CheckpointMeta;
  spec: InstanceSpec;
  /** A fresh host directory for this instance (socket dir, criu's log and pidfile). */
  baseDir: string;
  /** Holds passwd and group for the sandbox. */
  etcDir: string;
  /** The host's resolv.conf, which the instance's own is generated from (resolv.ts). Default /etc/resolv.conf. */
  hostResolvConf?: string;
  loopbackScript?: string;
  cgroup?: InstanceCgroup;
  /** `network: egress`: attach outbound network with this slirp4netns (network.ts) before returning. */
  slirpPath?: string;
  /** Receives each output line of the restored instance. */
  onLine(stream: 'stdout' | 'stderr', line: string, requestId?: string): void;
  timeoutMs: number;
}

/**
 * criu with its stdout/stderr as pipes (copied on by `cat`): the restored processes write to
 * these in place of the dumped pipes, and CRIU can only put a pipe where a pipe was. criu's exit
 * status comes on fd 3, since the shell itself lasts as long as the restored instance.
 */
const RESTORE_SCRIPT = '{ { "$@"; echo "$?" >&3; } 2>&1 1>&9 9>&- | cat 1>&2; } 9>&1 | cat';

/** criu's exit status from fd 3 (null when the shell ended without one, or on timeout). */
function restoreStatus(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    let text = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    const done = (code: number | null) => {
      clearTimeout(timer);
      pipe.removeAllListeners('data');
      resolve(code);
    };
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {}
      done(null);
    }, timeoutMs);
    pipe.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) done(Number(text.trim()));
    });
    child.once('close', () => done(null));
    child.once('error', () => done(null));
  });
}

/**
 * Restores one instance. Rejects NIMBUS_ERR_START_FAILED with criu's error lines when the restore
 * fails (nothing is left running then: criu kills a half-restored tree, the cgroup goes with it).
 */
export async function restoreInstance(req: RestoreRequest): Promise<RestoredInstance> {
  const runDir = join(req.baseDir, 'run');
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  chownSync(runDir, 65534, 65534);
  const args = restoreArgs({
    image: req.image,
    meta: req.meta,
    workDir: req.baseDir,
    runDir,
    etcDir: req.etcDir,
    // Read at each restore: a host whose resolvers change (DHCP, a VPN) gives the next instance the new ones.
    resolvConf: writeInstanceResolvConf(req.baseDir, req.hostResolvConf),
    loopbackScript: req.loopbackScript,
  });
  // criu joins the instance's cgroup first: every restored process is its child, so it is in there too.
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      JOIN_SCRIPT,
      'nimbus-restore',
      ...(req.cgroup?.procsFiles ?? []),
      '--',
      '/bin/sh',
      '-c',
      RESTORE_SCRIPT,
      'nimbus-restore',
      req.criuPath,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, detached: true },
  );
  const streams = { stdout: child.stdout!, stderr: child.stderr! };
  const gone = Promise.all(
    Object.values(streams).map((s) => new Promise<void>((resolve) => s.once('close', () => resolve()))),
  ).then(() => {});
  for (const [name, stream] of Object.entries(streams))
    readLines(stream, ({ line, requestId }) => req.onLine(name as 'stdout' | 'stderr', line, requestId));
  const code = await restoreStatus(child, req.timeoutMs);
  let pid = Number.NaN;
  try {
    pid = Number(readFileSync(join(req.baseDir, 'pid'), 'utf8').trim());
  } catch {}
  if (code !== 0 || !Number.isInteger(pid)) {
    const why = criuErrors(join(req.baseDir, 'restore.log'));
    await req.cgroup?.remove();
    rmSync(req.baseDir, { recursive: true, force: true });
    throw new NimbusError('NIMBUS_ERR_START_FAILED', `criu restore failed (exit ${code}): ${why}`);
  }
  let egress: Egress | undefined;
  if (req.slirpPath) {
    try {
      egress = await attachEgress({
        slirpPath: req.slirpPath,
        pid,
        procsFiles: req.cgroup?.procsFiles ?? [],
        timeoutMs: req.timeoutMs,
      });
    } catch (err) {
      // The restored tree is running: end it (its cgroup removal kills every process in it).
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
      await req.cgroup?.remove();
      rmSync(req.baseDir, { recursive: true, force: true });
      throw new NimbusError('NIMBUS_ERR_START_FAILED', (err as Error).message);
    }
  }
  const channel = createChannel(join(runDir, 's.sock'), req.spec.id);
  const instance: RestoredInstance = {
    id: req.spec.id,
    spec: req.spec,
    state: 'ready',
    pid,
    startMode: 'criu',
    gone,
    channel,
    cgroup: req.cgroup,
    egress,
    fetch(request, options) {
      if (instance.state !== 'ready' && instance.state !== 'stopping')
        return Promise.reject(
          new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${instance.id} is not running (${instance.state})`),
        );
      return channel.fetch(request, options?.signal ?? request.signal);
    },
    // Restores are app mode: the watchdog carries upgraded connections.
    tunnel() {
      if (instance.state !== 'ready' && instance.state !== 'stopping')
        return Promise.reject(
          new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${instance.id} is not running (${instance.state})`),
        );
      return channel.tunnel();
    },
    async cleanup() {
      await egress?.close();
      await channel.close();
      await req.cgroup?.remove();
      rmSync(req.baseDir, { recursive: true, force: true });
    },
  };
  return instance;
}
