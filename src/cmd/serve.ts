import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { getRequestListener } from '@hono/node-server';
import { createApi, FunctionsService } from '../api/index.js';
import { TrafficService } from '../api/traffic-service.js';
import { systemClock } from '../core/clock.js';
import { NimbusError } from '../core/errors.js';
import {
  type AsyncDefaults,
  createAsyncEndpoint,
  createAsyncInvocations,
  createInvoker,
  createQueueDemand,
  type QueueDemand,
} from '../events/index.js';
import { createNatsPublisher } from '../events/nats-publisher.js';
import { createFrontDoor, createGateway, createStoreResolver, type InvocationRecord } from '../gateway/index.js';
import { createInstanceGuard } from '../gateway/instance-guard.js';
import { createInstanceManager, type RevisionPlan } from '../instances/index.js';
import { createInstanceSampler } from '../observe/instance-sampler.js';
import { createLogStore, type LogRetention, requestRecord } from '../observe/log-store.js';
import { createMetrics } from '../observe/metrics.js';
import { createTracer } from '../observe/tracing.js';
import { createUsageMeter } from '../observe/usage.js';
import { createSqliteQueue } from '../queue/index.js';
import { createRolloutController } from '../rollout/index.js';
import { createRuntimeByKind } from '../runtime/by-kind.js';
import { checkpointSubject, createCriuRuntime } from '../runtime/criu/index.js';
import { createProcessRuntime, type Runtime } from '../runtime/index.js';
import { createIsolateRuntime } from '../runtime/isolate/index.js';
import { createSnapshotBuilder, withInitReports, withSnapshotFallback } from '../runtime/snapshot/index.js';
import { createLocalArtifactStore, createSqliteStore } from '../store/index.js';
import {
  createTriggerManager,
  cronTrigger,
  intervalTrigger,
  mqttTrigger,
  natsTrigger,
  rabbitmqTrigger,
  redisStreamsTrigger,
} from '../triggers/index.js';
import { deployExamples } from './examples.js';

export interface NimbusOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Where functions, revisions, artifacts and logs are kept. */
  dataDir: string;
  /** Largest function request body. Default 6 MB. */
  maxBodyBytes?: number;
  /** Largest deploy upload. Default 100 MB. */
  maxUploadBytes?: number;
  /** Deploy examples/ when the node has no function yet. Default false. */
  examples?: boolean;
  /** How long a shutdown waits for in-flight requests. Default 30 s. */
  drainTimeoutMs?: number;
  /** Instance provider; default the process runtime. */
  runtime?: Runtime;
  /** Refuse to start when the process runtime cannot sandbox instances. */
  requireSandbox?: boolean;
  /** Warm pool cells per shape for node cold starts (docs/cold-start.md); 0 off. Default 2 when sandboxed. */
  poolSize?: number;
  /** NATS server for `nats:SUBJECT` async destinations, e.g. nats://127.0.0.1:4222. */
  natsUrl?: string;
  /** Per-request Prometheus metrics and usage metering. Default true. */
  metrics?: boolean;
  /** One log record per invocation (status, duration, cold/warm). Default true. */
  requestLogs?: boolean;
  /** How many log records are kept (count per function, age, total size); see docs/observability.md. */
  logRetention?: Partial<LogRetention>;
  /** OTLP/HTTP receiver for traces (e.g. http://127.0.0.1:4318); no tracing work at all without it. */
  otlpEndpoint?: string;
  /** Idle time before an instance is frozen (cgroup freezer). Default 5000 ms; 0 never. */
  freezeAfterMs?: number;
  /** Async invocation defaults (retries, backoff, retention…); see src/events/types.ts. */
  async?: Partial<AsyncDefaults>;
  /** V8 snapshot builds (`snapshot: true`, docs/snapshots.md): deadline and settle time. Built only with the process runtime. */
  /** `autoThresholdMs`: init time above which `snapshot: auto` revisions get one (default 250 ms). */
  snapshots?: { timeoutMs?: number; settleMs?: number; autoThresholdMs?: number };
}

export interface NimbusNode {
  url: string;
  server: Server;
  /** Functions deployed from examples/ at this start. */
  examples: string[];
  /** Whether instances run sandboxed, and what is missing when not (process runtime only). */
  sandbox?: { sandboxed: boolean; warnings: string[] };
  /** Drains in-flight requests, stops every instance, closes the stores. */
  close(): Promise<void>;
}

/**
 * The single-node composition root: the only place where concrete implementations are chosen
 * (SQLite store, local artifacts, process runtime) and wired together.
 */
export async function startNimbus(options: NimbusOptions): Promise<NimbusNode> {
  mkdirSync(options.dataDir, { recursive: true });
  const clock = systemClock;
  const store = createSqliteStore({ path: join(options.dataDir, 'nimbus.db') });
  const artifacts = createLocalArtifactStore({ dir: join(options.dataDir, 'artifacts') });
  const logs = createLogStore({ path: join(options.dataDir, 'logs.db'), clock, ...options.logRetention });
  const tracer = options.otlpEndpoint ? createTracer({ endpoint: options.otlpEndpoint }) : undefined;
  const usage = createUsageMeter({ path: join(options.dataDir, 'usage.db') });
  const processRuntime = options.runtime
    ? undefined
    : createProcessRuntime({ requireSandbox: options.requireSandbox, poolSize: options.poolSize });
  // App mode with `snapshot: true`: cold starts restore a CRIU image when CRIU works here (docs/criu.md).
  const criuRuntime = processRuntime
    ? // Node functions with a V8 snapshot restore from its blob; a blob Node refuses starts normally.
      // Instances report their init time: `snapshot: auto` revisions get a snapshot when it is slow.
      createCriuRuntime({
        inner: withInitReports(withSnapshotFallback(processRuntime), (spec, initMs) =>
          service.autoSnapshots?.report(spec.function, spec.revision, initMs),
        ),
        dir: join(options.dataDir, 'criu'),
      })
    : undefined;
  // runtime: isolate functions run in V8 isolates here (docs/isolate.md), their fetch off loopback (outbound-guard.ts).
  let selfUrl: string | undefined;
  const isolates = () => createIsolateRuntime({ outbound: { dataPlane: () => selfUrl } });
  const runtime: Runtime = options.runtime ?? createRuntimeByKind({ process: criuRuntime!, isolate: isolates() });
  if (options.requireSandbox && processRuntime && !processRuntime.sandboxed) {
    await runtime.close();
    throw new NimbusError(
      'NIMBUS_ERR_INTERNAL',
      `Instances cannot be sandboxed here (--require-sandbox): ${processRuntime.warnings.join('; ')}`,
    );
  }
  // Snapshots restore in the process runtime only; their builds run sandboxed like its instances.
  const snapshotBuilder = processRuntime
    ? createSnapshotBuilder({ timeoutMs: options.snapshots?.timeoutMs, settleMs: options.snapshots?.settleMs })
    : undefined;
  // A deleted function's revisions finish retiring here; its files are removed after that.
  const retiring = new Map<string, Promise<unknown>>();
  const sandbox = processRuntime
    ? { sandboxed: processRuntime.sandboxed, warnings: processRuntime.warnings }
    : undefined;
  let queueDemand: QueueDemand | undefined;
  const manager = createInstanceManager({
    runtime,
    clock,
    freezeAfterMs: options.freezeAfterMs,
    // Async backlog counts as load on the revisions that async work is routed to, by traffic share.
    extraDemand: (plan) => (queueDemand ? queueDemand.demand(plan.function) * resolver.share(plan) : 0),
    onLog: (r) => logs.append(r),
    onStart: (e) => {
      metrics.onStart(e);
      tracer?.onStart(e);
    },
  });
  const liveInstances = () => manager.instances().map((i) => ({ ...i, usage: sampler.latest(i.id) }));
  const metrics = createMetrics({
    instances: liveInstances,
    waiting: () => manager.waiting(),
    autoscale: () => manager.scale(),
    inFlight: () => gateway.inFlight,
    upgraded: () => gateway.openUpgrades(),
    async asyncQueue() {
      const names = [...new Set(resolver.plans().map((p) => p.function))];
      return new Map(await Promise.all(names.map(async (n) => [n, await invocations.counts(n)] as const)));
    },
  });
  const service = new FunctionsService(
    store,
    artifacts,
    {
      async onChange(name) {
        const { referenced, unreferenced } = await resolver.refresh(name);
        // Revisions no share or tag points at any more drain in the background; a deleted
        // function's held requests fail now. Every revision still routed to is kept warm.
        const gone =
          referenced.length === 0
            ? new NimbusError('NIMBUS_ERR_FUNCTION_NOT_FOUND', `Function ${name} was deleted`)
            : undefined;
        const retired = Promise.allSettled(unreferenced.map((plan) => manager.retire(plan.key, gone)));
        if (gone) retiring.set(name, retired);
        // Its WebSockets too: they would keep a deleted function's app serving for as long as they last.
        if (gone) gateway.closeUpgrades(name);
        for (const plan of referenced) manager.ensureMin(plan);
      },
      instances: (name) => liveInstances().filter((i) => i.function === name),
      ended: (name) => manager.ended(name),
      startError: (name, revision) => manager.startError(`${name}/${revision}`),
      onDelete: (name) => {
        logs.deleteFunction(name);
        void rollouts.forget(name);
      },
      release: { release: (current, revision, canary) => rollouts.release(current, revision, canary) },
      // The trigger manager is made below (it needs the async queue); deploys only come once it is.
      triggers: {
        plan: (name, declared) => triggers.plan(name, declared),
        reconcile: (plan) => triggers.reconcile(plan),
        removeFunction: (name) => triggers.removeFunction(name),
      },
      async retired(name) {
        await retiring.get(name);
        retiring.delete(name);
      },
      discardCheckpoint: criuRuntime ? (key) => criuRuntime.discard(key) : undefined,
      listCheckpoints: criuRuntime ? () => criuRuntime.images() : undefined,
      onSnapshotReady(revision, artifactDir) {
        // The manager's pool holds this plan object and copies its spec at every start: the next
        // cold start restores from the blob; running instances keep the spec they started with.
        const plan = resolver.plan(revision.function, revision.id);
        if (plan && revision.snapshot?.status === 'ready' && revision.snapshot.node === process.version)
          plan.spec = { ...plan.spec, artifactDir, snapshotBlob: revision.snapshot.blob };
      },
      log: (line) => console.warn(`nimbus: ${line}`),
    },
    { snapshots: snapshotBuilder, autoSnapshotMs: options.snapshots?.autoThresholdMs },
  );
  // Automated canaries: fed by the gateway's invocation records, steering traffic through the service.
  const rollouts = createRolloutController({
    clock,
    bucket: store.bucket('rollouts'),
    update: (name, mutate) => service.updateFunction(name, mutate),
  });
  const sampler = createInstanceSampler({
    clock,
    list: () => manager.instances(),
    read: (target) => runtime.stats?.(target.id),
  });
  const resolver = createStoreResolver({ functions: service.functions, revisions: service.revisions, artifacts });
  await resolver.load();

  /** Usage metering (GB-seconds, cold starts, egress) of a request or an async/trigger attempt. */
  const meter = (r: InvocationRecord) => {
    const memoryMb = r.revision ? resolver.plan(r.function, r.revision)?.spec.memoryMb : undefined;
    if (!memoryMb || r.error === 'NIMBUS_ERR_FUNCTION_NOT_FOUND') return;
    const { function: name, durationMs, cold, egressBytes } = r;
    usage.record({ function: name, time: Date.now(), durationMs, memoryMb, cold, egressBytes });
  };
  let draining = false;
  const gateway = createGateway({
    resolver,
    manager,
    clock,
    maxBodyBytes: options.maxBodyBytes,
    // Per-request metrics and usage metering; `metrics: false` leaves them out (measured overhead in BENCHMARKS.md).
    tracer,
    // The rollout controller always listens (canaries judge from these records); request logs,
    // metrics and usage only when on.
    onInvocation:
      options.metrics === false && options.requestLogs === false
        ? (r) => rollouts.onInvocation(r)
        : (r) => {
            rollouts.onInvocation(r);
            if (options.requestLogs !== false && r.error !== 'NIMBUS_ERR_FUNCTION_NOT_FOUND')
              logs.append(requestRecord(r, clock.now()));
            if (options.metrics === false) return;
            metrics.onInvocation(r);
            meter(r);
          },
  });
  // `nats:` destinations publish through one node-level connection, opened on first use.
  const natsPublisher = options.natsUrl ? createNatsPublisher(options.natsUrl) : undefined;
  // Async invocations: their own SQLite file, invoked through the same resolver and instance slots.
  const queue = createSqliteQueue({ path: join(options.dataDir, 'queue.db'), clock });
  const invocations = createAsyncInvocations({
    queue,
    clock,
    // With tracing on, each attempt is a span (`async NAME`) in the trace the invocation carries.
    // Each attempt is metered and feeds canary judging, as a request through the gateway is.
    invoker: createInvoker({
      resolver,
      manager,
      clock,
      maxBodyBytes: options.async?.maxResultBytes,
      tracer,
      onAttempt: (r) => {
        rollouts.onInvocation(r);
        if (options.metrics !== false) meter(r);
      },
    }),
    configs: store.bucket('async-config'),
    exists: (name, tag) => resolver.resolve(name, tag) !== undefined,
    // The longest of the function's routed revisions: a tagged invocation may run any of them.
    timeoutMs: (name) => longestTimeout(resolver.plans(), name) ?? resolver.resolve(name)?.spec.timeoutMs,
    defaults: options.async,
    natsPublish: natsPublisher?.publish,
  });
  const handleAsync = createAsyncEndpoint({ invocations, maxBodyBytes: options.maxBodyBytes });
  // Event sources: each kind of trigger is one factory; stored triggers start after the server listens.
  const triggers = createTriggerManager({
    bucket: store.bucket('triggers'),
    invocations,
    clock,
    factories: [cronTrigger, natsTrigger, rabbitmqTrigger, mqttTrigger, redisStreamsTrigger, intervalTrigger],
  });
  const api = createApi({
    traffic: new TrafficService(service, rollouts),
    events: invocations,
    triggers,
    service,
    logs,
    metrics,
    usage,
    maxUploadBytes: options.maxUploadBytes,
    healthy: () => !draining,
    runtimeInfo: () => (sandbox ? { sandbox } : {}),
    checkpointStatus: criuRuntime ? (r) => criuRuntime.status(checkpointSubject(r)) : undefined,
    scale: (name) => manager.scale(name),
  });
  // Function instances on this host get 403 from the control plane (instance-guard.ts); the data plane is theirs too.
  const guard = createInstanceGuard({ runtime: options.runtime ?? processRuntime, warn: !options.runtime });
  const apiListener = guard.wrap(getRequestListener(api.fetch, { overrideGlobalObjects: false }));

  const server = createFrontDoor({ gateway, handleAsync, api: apiListener, draining: () => draining });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  selfUrl = url;

  for (const plan of resolver.plans()) manager.ensureMin(plan);
  // Files no revision references (deletes before collection existed, a crash mid-way) go, in the background.
  const swept = service
    .sweep()
    .then((r) => {
      if (r.artifacts.length + r.checkpoints.length > 0)
        console.warn(`nimbus: removed ${r.artifacts.length} unused artifacts and ${r.checkpoints.length} CRIU images`);
    })
    .catch((err) => console.warn(`nimbus: sweeping unused artifacts failed: ${(err as Error).message}`));
  // Rollouts that were running when the node stopped resume, their current step observed afresh.
  await rollouts.start();
  await invocations.start();
  queueDemand = createQueueDemand({ invocations, functions: () => resolver.plans().map((p) => p.function) });
  await triggers.start();
  const examples = options.examples && resolver.plans().length === 0 ? await deployExamples(service) : [];

  return {
    url,
    server,
    examples,
    sandbox,
    async close() {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      gateway.closeUpgrades();
      server.closeIdleConnections();
      await Promise.race([gateway.idle(), delay(options.drainTimeoutMs ?? 30_000, undefined, { ref: false })]);
      await rollouts.close();
      await triggers.close();
      queueDemand?.stop();
      // Unfinished async work stays in the queue and runs again at the next start.
      await invocations.close(options.drainTimeoutMs ?? 30_000);
      sampler.stop();
      // Background snapshot builds and file removals finish before the store closes.
      await service.autoSnapshots?.settled();
      await service.collected();
      await swept;
      await manager.close();
      await runtime.close();
      snapshotBuilder?.close();
      await natsPublisher?.close();
      server.closeAllConnections();
      await closed;
      await tracer?.shutdown();
      await logs.close();
      usage.close();
      await queue.close();
      await store.close();
    },
  };
}

/** The longest timeout among the routed revisions of `name`, undefined when it has none. */
function longestTimeout(plans: readonly RevisionPlan[], name: string): number | undefined {
  let longest: number | undefined;
  for (const p of plans)
    if (p.function === name && (longest === undefined || p.spec.timeoutMs > longest)) longest = p.spec.timeoutMs;
  return longest;
}
