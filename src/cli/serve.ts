import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { CliContext } from './context.js';
import { CliError } from './errors.js';
import { parseDuration, parseNonNegativeInt, parsePort, parsePositiveInt } from './options.js';

/** What `nimbus serve` resolves its flags and environment to. */
export interface ServeOptions {
  host: string;
  port: number;
  dataDir: string;
  maxBodyBytes?: number;
  examples: boolean;
  /** Refuse to start when instances cannot be sandboxed (bubblewrap + cgroups). */
  requireSandbox: boolean;
  /** NATS server for `nats:` async destinations. */
  natsUrl?: string;
  /** False with --no-metrics: no per-request metrics or usage metering. */
  metrics?: boolean;
  /** False with --no-request-logs: no per-invocation log record. */
  requestLogs?: boolean;
  /** OTLP/HTTP trace receiver (--otlp-endpoint, env OTEL_EXPORTER_OTLP_ENDPOINT). */
  otlpEndpoint?: string;
  /** Log retention (--log-max-age, --log-max-records, --log-max-mb). */
  logRetention?: { maxAgeMs?: number; maxRecordsPerFunction?: number; maxBytes?: number };
  /** Warm pool cells per shape (--pool-size); 0 disables it. Unset: the runtime's default. */
  poolSize?: number;
  /** `--snapshot-auto-ms`: init time above which `snapshot: auto` revisions get a V8 snapshot. */
  snapshots?: { autoThresholdMs?: number };
}

/** Starts the node; resolves when it has shut down. Supplied by the composition root (src/cmd). */
export type ServeHook = (options: ServeOptions) => Promise<void>;

export function registerServe(program: Command, ctx: CliContext, serve: ServeHook | undefined): void {
  program
    .command('serve')
    .description('Run a Nimbus node: API, gateway and instances (deploys the examples on first start)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .addOption(new Option('--port <port>', 'port to listen on (env NIMBUS_PORT, default 8080)').argParser(parsePort))
    .option('--data <dir>', 'data directory (env NIMBUS_DATA, default .nimbus in the current directory)')
    .option('--max-body <bytes>', 'largest request body on /fn/ (default 6 MB)', parsePositiveInt)
    .option('--no-examples', 'do not deploy the bundled examples on first start')
    .option('--require-sandbox', 'refuse to start unless instances can be sandboxed (bubblewrap and cgroup limits)')
    .option('--no-metrics', 'skip per-request Prometheus metrics and usage metering')
    .option(
      '--pool-size <n>',
      'warm pre-started sandboxed processes kept for node cold starts, per memory size (default 2 when sandboxed; 0 off)',
      parseNonNegativeInt,
    )
    .option(
      '--snapshot-auto-ms <ms>',
      'node functions whose init takes longer get a V8 snapshot built in the background (snapshot: auto; default 250)',
      parseNonNegativeInt,
    )
    .option('--nats-url <url>', 'NATS server for nats:SUBJECT async destinations (env NIMBUS_NATS_URL)')
    .option('--no-request-logs', 'skip the per-invocation log record (status, duration, cold or warm)')
    .option('--otlp-endpoint <url>', 'export traces over OTLP/HTTP to this receiver (env OTEL_EXPORTER_OTLP_ENDPOINT)')
    .option('--log-max-age <duration>', 'drop log records older than this, e.g. 12h, 7d (default 7d)', parseDuration)
    .option('--log-max-records <n>', 'log records kept per function (default 10000)', parsePositiveInt)
    .option('--log-max-mb <n>', 'approximate size of all log records kept, MB (default 256)', parsePositiveInt)
    .action(
      async (opts: {
        host: string;
        port?: number;
        data?: string;
        maxBody?: number;
        examples: boolean;
        requireSandbox?: boolean;
        natsUrl?: string;
        metrics: boolean;
        requestLogs: boolean;
        otlpEndpoint?: string;
        logMaxAge?: number;
        logMaxRecords?: number;
        logMaxMb?: number;
        poolSize?: number;
        snapshotAutoMs?: number;
      }) => {
        const envPort = ctx.env.NIMBUS_PORT;
        let port = opts.port;
        if (port === undefined && envPort) {
          // The flag's parser does not see the env, so the same check runs here.
          try {
            port = parsePort(envPort);
          } catch {
            throw new CliError(`invalid NIMBUS_PORT: ${envPort}`, { exitCode: 2 });
          }
        }
        const options: ServeOptions = {
          host: opts.host,
          port: port ?? 8080,
          dataDir: resolve(ctx.cwd, opts.data ?? (ctx.env.NIMBUS_DATA || '.nimbus')),
          examples: opts.examples,
          requireSandbox: opts.requireSandbox === true,
        };
        const natsUrl = opts.natsUrl ?? (ctx.env.NIMBUS_NATS_URL || undefined);
        if (natsUrl) options.natsUrl = checkNatsUrl(natsUrl);
        if (!opts.metrics) options.metrics = false;
        if (!opts.requestLogs) options.requestLogs = false;
        const otlp = opts.otlpEndpoint ?? (ctx.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined);
        if (otlp) options.otlpEndpoint = checkHttpUrl(otlp, '--otlp-endpoint / OTEL_EXPORTER_OTLP_ENDPOINT');
        const retention = {
          ...(opts.logMaxAge !== undefined ? { maxAgeMs: opts.logMaxAge } : {}),
          ...(opts.logMaxRecords !== undefined ? { maxRecordsPerFunction: opts.logMaxRecords } : {}),
          ...(opts.logMaxMb !== undefined ? { maxBytes: opts.logMaxMb * 1024 * 1024 } : {}),
        };
        if (Object.keys(retention).length > 0) options.logRetention = retention;
        if (opts.maxBody !== undefined) options.maxBodyBytes = opts.maxBody;
        if (opts.poolSize !== undefined) options.poolSize = opts.poolSize;
        if (opts.snapshotAutoMs !== undefined) options.snapshots = { autoThresholdMs: opts.snapshotAutoMs };
        if (!serve) throw new CliError('serve is not available in this build');
        await serve(options);
      },
    );
}

/** An http(s) URL; anything else is a usage error now, not failed exports later. */
function checkHttpUrl(raw: string, what: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new CliError(`invalid ${what}: ${raw} (expected http://HOST:PORT)`, { exitCode: 2 });
  return raw;
}

/** `nats://host:port` or `tls://host:port`; anything else is a usage error now, not a failed delivery later. */
function checkNatsUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'nats:' && url.protocol !== 'tls:') || !url.hostname) {
    throw new CliError(`invalid --nats-url / NIMBUS_NATS_URL: ${raw} (expected nats://HOST:PORT)`, { exitCode: 2 });
  }
  return raw;
}
