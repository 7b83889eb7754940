/**
 * CRIU checkpoint/restore of app-mode instances (docs/criu.md), as a Runtime around the process
 * provider: specs without `checkpoint` (and every start when CRIU cannot be used) go to the inner
 * runtime untouched. For a checkpointed revision, the first instance starts normally and, once it
 * is ready, a copy made for the purpose is dumped in the background; later cold starts restore
 * that image. A restore that fails falls back to a normal start, with a `system` log line saying why.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestFile, type SpawnContext, spawnContext } from '../process/spawn.js';
import { type CgroupHost, type InstanceStats, openCgroups } from '../sandbox/cgroups.js';
import { limitsFor } from '../sandbox/limits.js';
import { createSandbox, type Sandbox, type SandboxOptions, trackTempDir } from '../sandbox/sandbox.js';
import type { Instance, InstanceSpec, Runtime, RuntimeEvent } from '../types.js';
import { type CheckpointMeta, IMAGE_LAYOUT, META_FILE, makeCheckpoint } from './checkpoint.js';
import { type CriuSupport, criuSupport } from './detect.js';
import { findSlirp } from './network.js';
import { HOST_RESOLV_CONF, writeInstanceResolvConf } from './resolv.js';
import { LOOPBACK_SCRIPT, type RestoredInstance, restoreInstance } from './restore.js';
import { type CheckpointStatus, type CheckpointSubject, createVerdict, unsupportedReason } from './support.js';

export interface CriuRuntimeOptions {
  inner: Runtime;
  /** Where images are kept, one directory per revision identity (`DATA/criu`). */
  dir: string;
  /** Detection result; default: detected once on this machine, on first need (`detect`). */
  support?: CriuSupport;
  /** How the machine is asked when `support` is not given. Default `criuSupport` (detect.ts). */
  detect?: () => Promise<CriuSupport>;
  nodePath?: string;
  guestDir?: string;
  baseEnv?: Record<string, string>;
  sandbox?: SandboxOptions;
  /**
   * slirp4netns, which gives restored `network: egress` instances their outbound network
   * (network.ts). Default: found on this machine; `false`: as if it were not installed (tests).
   */
  slirpPath?: string | false;
}

/** The CRIU runtime, with what it knows beyond the Runtime contract. */
export interface CriuRuntime extends Runtime {
  /** The detection's verdict, once it settled (`DETECTING` until then). */
  readonly support: CriuSupport;
  /**
   * Undefined when the revision did not ask for a checkpoint. Waits for the detection, which a
   * start does only briefly and only with an image on disk (else it starts plainly).
   */
  status(subject: CheckpointSubject): Promise<CheckpointStatus | undefined>;
  /** Resolves when the checkpoint of `key` being made (if any) is done. For tests and benches. */
  settled(key: string): Promise<void>;
  /**
   * Deletes the image of `key` (its revisions are gone), after a checkpoint in progress is done.
   * Call it once no instance restored from it runs: a restored instance's root is the `root/`
   * skeleton kept with the image.
   */
  discard(key: string): Promise<void>;
  /** The keys of the images kept on disk (for the sweep of images no revision uses). */
  images(): Promise<string[]>;
  stats(id: string): InstanceStats | undefined;
  freeze(id: string): Promise<boolean>;
  thaw(id: string): Promise<boolean>;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * How long a cold start with an image on disk waits for the machine's CRIU verdict before it
 * starts plainly: the detection takes ≈ 0.1 s where CRIU works and up to its probe's 5 s on a
 * kernel where dumps hang, where no start should wait that long.
 */
const VERDICT_WAIT_MS = 2000;

/** A failed checkpoint is tried again after this long, on the next normal start. */
const RETRY_MS = 5 * 60_000;

const ETC_PASSWD = 'root:x:0:0:root:/root:/usr/sbin/nologin\nnimbus:x:65534:65534:nimbus:/tmp:/usr/sbin/nologin\n';
const ETC_GROUP = 'root:x:0:\nnimbus:x:65534:\n';

export function createCriuRuntime(options: CriuRuntimeOptions): CriuRuntime {
  const { inner } = options;
  // Detected on first need, off the event loop (support.ts): a node without checkpointed
  // functions never runs `criu check`.
  const verdict = createVerdict(options.support, options.detect ?? criuSupport);
  const support = verdict.now;
  const whenDetected = verdict.settled;
  const ctx: SpawnContext = spawnContext(options);
  // Made on first use only: a node without CRIU (or without checkpointed functions) pays nothing.
  let parts:
    | {
        sandbox: Sandbox;
        cgroups: CgroupHost;
        etcDir: string;
        runDir: string;
        remove: () => void;
        loopbackScript?: string;
      }
    | undefined;
  let partsError: string | undefined;
  const setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find(executable);
  const hostResolvConf = options.sandbox?.resolvConf ?? HOST_RESOLV_CONF;
  const slirpPath = options.slirpPath === false ? undefined : (options.slirpPath ?? findSlirp());
  const unsupported = (subject: CheckpointSubject) =>
    unsupportedReason(subject, support(), true, slirpPath !== undefined);
  const getParts = () => {
    if (parts || partsError) return parts;
    const base = mkdtempSync(join(tmpdir().length < 60 ? tmpdir() : '/tmp', 'nimbus-criu-rt-'));
    const remove = trackTempDir(base);
    const etcDir = join(base, 'etc');
    mkdirSync(etcDir, { mode: 0o755 });
    writeFileSync(join(etcDir, 'passwd'), ETC_PASSWD);
    writeFileSync(join(etcDir, 'group'), ETC_GROUP);
    // Dump copies read what a restored instance will: a lookup cached at init stays right after it.
    const resolvConf = writeInstanceResolvConf(etcDir, hostResolvConf);
    const sandbox = createSandbox({ ...options.sandbox, resolvConf });
    const cgroups = openCgroups();
    if (!sandbox.isolated || 'reason' in cgroups) {
      partsError = sandbox.warnings.join('; ') || ('reason' in cgroups ? cgroups.reason : 'no sandbox');
      sandbox.close();
      remove();
      return undefined;
    }
    // Loopback only (network: none): bring it up instead of replaying the namespace (restore.ts).
    let loopbackScript: string | undefined;
    if (executable('/usr/bin/nsenter') && ['/usr/sbin/ip', '/usr/bin/ip', '/sbin/ip'].some(executable)) {
      loopbackScript = join(base, 'loopback.sh');
      writeFileSync(loopbackScript, LOOPBACK_SCRIPT, { mode: 0o755 });
    }
    parts = { sandbox, cgroups, etcDir, runDir: base, remove, loopbackScript };
    return parts;
  };
  const sandboxedHere = () => support().available && setprivPath !== undefined && getParts() !== undefined;

  const restored = new Map<string, RestoredInstance>();
  const stopping = new Map<string, Promise<void>>();
  const endings = new Map<string, Promise<void>>();
  const listeners = new Set<(event: RuntimeEvent) => void>();
  const making = new Map<string, Promise<void>>();
  /** Why the last checkpoint of a key failed, and when: tried again after RETRY_MS (a busy machine may time it out). */
  const failures = new Map<string, { reason: string; at: number }>();
  const counts = new Map<string, number>();
  let counter = 0;
  const emit = (event: RuntimeEvent) => {
    for (const l of listeners) {
      try {
        l(event);
      } catch {}
    }
  };
  const unsubscribeInner = inner.subscribe(emit);
  const system = (id: string, line: string) => emit({ type: 'log', id, stream: 'system', line, time: Date.now() });

  const imageDir = (key: string) => join(options.dir, key.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80));
  let platformId: string | undefined;
  const platform = () => {
    platformId ??= `${process.version} criu-${support().version} ${IMAGE_LAYOUT} watchdog-${createHash('sha256')
      .update(readFileSync(guestFile(ctx.guestDir, 'watchdog')))
      .digest('hex')
      .slice(0, 12)}`;
    return platformId;
  };
  /** The checkpoint of `key`, when there is one made by this platform build. */
  const readMeta = (key: string): CheckpointMeta | undefined => {
    try {
      const meta = JSON.parse(readFileSync(join(imageDir(key), META_FILE), 'utf8')) as CheckpointMeta;
      return meta.platform === platform() ? meta : undefined;
    } catch {
      return undefined;
    }
  };

  function checkpointLater(spec: InstanceSpec, key: string): void {
    const failed = failures.get(key);
    if (making.has(key) || (failed && Date.now() - failed.at < RETRY_MS) || readMeta(key)) return;
    const p = getParts()!;
    const job = makeCheckpoint(
      {
        criuPath: support().path!,
        criuVersion: support().version,
        platform: platform(),
        setprivPath: setprivPath!,
        sandbox: p.sandbox,
        spawn: ctx,
      },
      spec,
      imageDir(key),
    )
      .then((meta) =>
        system(
          spec.id,
          `CRIU checkpoint of ${spec.revision} made (${meta.dumpMs} ms, ${Math.round(meta.bytes / 1e6)} MB): later cold starts restore it`,
        ),
      )
      .catch((err) => {
        failures.set(key, { reason: (err as Error).message, at: Date.now() });
        system(spec.id, `${(err as Error).message}; instances of ${spec.revision} start normally`);
      })
      .finally(() => making.delete(key));
    making.set(key, job);
  }

  async function restore(spec: InstanceSpec, key: string, meta: CheckpointMeta): Promise<Instance> {
    const p = getParts()!;
    const n = ++counter;
    const baseDir = join(p.runDir, String(n));
    mkdirSync(baseDir, { mode: 0o755 });
    const cgroup = p.cgroups.create(
      `criu-${n}-${spec.id.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60)}`,
      limitsFor(spec.memoryMb, spec.cpu),
    );
    const instance = await restoreInstance({
      criuPath: support().path!,
      image: imageDir(key),
      meta,
      spec,
      baseDir,
      etcDir: p.etcDir,
      hostResolvConf,
      loopbackScript: p.loopbackScript,
      cgroup,
      slirpPath: spec.network === 'none' ? undefined : slirpPath,
      timeoutMs: spec.startTimeoutMs ?? 10_000,
      onLine: (stream, line, requestId) =>
        emit({ type: 'log', id: spec.id, stream, line, ...(requestId ? { requestId } : {}), time: Date.now() }),
    });
    restored.set(spec.id, instance);
    counts.set(key, (counts.get(key) ?? 0) + 1);
    // Ended: gone, cleaned up and reported (what stop() waits for).
    const ended = instance.gone.then(async () => {
      const expected = stopping.has(spec.id);
      restored.delete(spec.id);
      await instance.cleanup();
      instance.state = expected ? 'stopped' : 'failed';
      emit({
        type: 'state',
        id: spec.id,
        state: instance.state,
        exit: { code: null, signal: null, reason: expected ? 'stopped' : 'exited', expected },
      });
    });
    endings.set(spec.id, ended);
    void ended.finally(() => endings.delete(spec.id));
    emit({ type: 'state', id: spec.id, state: 'ready' });
    return instance;
  }

  const stopRestored = (instance: RestoredInstance, graceMs: number): Promise<void> => {
    const existing = stopping.get(instance.id);
    if (existing) return existing;
    const done = (async () => {
      if (instance.state === 'ready') {
        instance.state = 'stopping';
        emit({ type: 'state', id: instance.id, state: 'stopping' });
      }
      await instance.cgroup?.thaw().catch(() => {});
      const kill = (signal: NodeJS.Signals) => {
        try {
          process.kill(instance.pid, signal);
        } catch {}
      };
      // The watchdog drains and stops the app; SIGKILL of the namespace's init ends all of it.
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), graceMs);
      await (endings.get(instance.id) ?? instance.gone);
      clearTimeout(timer);
      stopping.delete(instance.id);
    })();
    stopping.set(instance.id, done);
    return done;
  };

  return {
    name: `${inner.name}+criu`,
    get support() {
      return support();
    },
    async status(subject) {
      if (!subject.checkpoint) return undefined;
      await whenDetected();
      const key = subject.checkpoint;
      const reason =
        unsupported(subject) ??
        (setprivPath ? undefined : 'setpriv (util-linux) is missing') ??
        (sandboxedHere() ? undefined : `instances are not sandboxed: ${partsError}`);
      const restoredCount = counts.get(key) ?? 0;
      if (reason) return { restores: false, state: 'unsupported', reason, restored: restoredCount };
      const meta = readMeta(key);
      if (meta)
        return {
          restores: true,
          state: 'ready',
          image: { bytes: meta.bytes, dumpMs: meta.dumpMs, createdAt: meta.createdAt },
          restored: restoredCount,
        };
      const failed = failures.get(key);
      if (failed) return { restores: false, state: 'failed', reason: failed.reason, restored: restoredCount };
      return {
        restores: false,
        state: 'pending',
        reason: making.has(key) ? 'the checkpoint is being made' : 'made after the first instance is ready',
        restored: restoredCount,
      };
    },
    async settled(key) {
      // A start made before the verdict queues its checkpoint on the detection (start, below).
      await verdict.pending();
      await making.get(key);
    },
    async images() {
      const names = await readdir(options.dir).catch(() => [] as string[]);
      // In-progress dumps are `KEY.new-…`; only finished images count.
      return names.filter((n) => /^[A-Za-z0-9_-]+$/.test(n));
    },
    async discard(key) {
      await making.get(key)?.catch(() => {});
      failures.delete(key);
      counts.delete(key);
      await rm(imageDir(key), { recursive: true, force: true });
    },
    async start(spec, startOptions) {
      const key = spec.checkpoint;
      // An image made before this node process began (a restart) is worth a short wait for the
      // verdict: where CRIU works the verdict takes ≈ 0.1 s and a restore beats a plain start.
      if (key && !verdict.known() && existsSync(imageDir(key))) await verdict.within(VERDICT_WAIT_MS);
      if (key && !verdict.known()) {
        // The verdict is not in yet: this cold start does not wait longer, and the checkpoint
        // is made once it says CRIU works (as after any first start without an image).
        const instance = await inner.start(spec, startOptions);
        void whenDetected()
          .then(() => {
            if (!unsupported(spec) && setprivPath && sandboxedHere() && !readMeta(key)) checkpointLater(spec, key);
          })
          // Off any caller's path now: a failure here is said in the function's logs, never thrown.
          .catch((err: Error) => system(spec.id, `CRIU checkpoint not made: ${err.message}; instances start normally`));
        return instance;
      }
      if (!key || unsupported(spec) || !setprivPath || !sandboxedHere()) return inner.start(spec, startOptions);
      const meta = readMeta(key);
      if (meta && !startOptions?.signal?.aborted) {
        try {
          return await restore(spec, key, meta);
        } catch (err) {
          system(spec.id, `CRIU restore failed, starting normally: ${(err as Error).message}`);
        }
      }
      const instance = await inner.start(spec, startOptions);
      if (!meta) checkpointLater(spec, key);
      return instance;
    },
    async stop(id, stopOptions) {
      const instance = restored.get(id);
      if (!instance) return inner.stop(id, stopOptions);
      return stopRestored(instance, stopOptions?.graceMs ?? 2000);
    },
    list: () => [...inner.list(), ...restored.values()],
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stats(id): InstanceStats | undefined {
      const instance = restored.get(id);
      return instance ? instance.cgroup?.stats() : inner.stats?.(id);
    },
    async freeze(id) {
      const instance = restored.get(id);
      if (!instance) return (await inner.freeze?.(id)) ?? false;
      if (!instance.cgroup) return false;
      await instance.cgroup.freeze();
      return true;
    },
    async thaw(id) {
      const instance = restored.get(id);
      if (!instance) return (await inner.thaw?.(id)) ?? false;
      if (!instance.cgroup) return false;
      await instance.cgroup.thaw();
      return true;
    },
    async close() {
      await Promise.all([...restored.values()].map((i) => stopRestored(i, 2000)));
      await Promise.allSettled(making.values());
      unsubscribeInner();
      await inner.close();
      parts?.cgroups.close();
      parts?.sandbox.close();
      parts?.remove();
    },
  };
}
