import { basename, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { toApiError } from './api-client.js';
import type { DeployResult } from './api-types.js';
import { formatCheckpoint } from './checkpoint-format.js';
import { clientFor, printJson, withUrl } from './common.js';
import { type CliContext, writeLine } from './context.js';
import {
  buildOverrides,
  collectEnv,
  type DeployFlags,
  parseMemory,
  parseNonNegativeInt,
  parsePositiveInt,
  parsePositiveNumber,
  parseSeconds,
  parseShare,
  parseWholeSeconds,
} from './options.js';
import { packDirectory } from './pack.js';
import { formatSnapshot } from './snapshot-format.js';
import { formatBytes } from './table.js';

interface DeployOptions extends DeployFlags {
  url?: string;
  json?: boolean;
  canary?: boolean;
}

export function registerDeploy(program: Command, ctx: CliContext): void {
  const command = program
    .command('deploy')
    .description('Pack a directory, upload it, and build a new revision')
    .argument('<dir>', 'source directory (with an optional nimbus.yaml / nimbus.json)')
    .option('--name <name>', 'function name (default: manifest name, else the directory name)')
    .addOption(
      new Option(
        '--runtime <runtime>',
        'node (a function module), app (a program listening on $PORT) or isolate (a fetch handler in a V8 isolate)',
      ).choices(['node', 'app', 'isolate']),
    )
    .option('--handler <file>', 'entry file, relative to DIR (node)')
    .option('--command <cmd>', 'program to run (app), e.g. "python3 server.py"')
    .option('--env <K=V>', 'environment variable (repeatable)', collectEnv)
    .option('--memory <MB>', 'memory limit in MB (default 256)', parseMemory)
    .option('--timeout <s>', 'request timeout in seconds (default 30)', parseSeconds)
    .option('--concurrency <n>', 'in-flight requests per instance (default 10)', parsePositiveInt)
    .option('--min <n>', 'instances kept warm (default 0)', parseNonNegativeInt)
    .option('--max <n>', 'most instances (default 10)', parsePositiveInt)
    .option('--idle-timeout <s>', 'seconds idle before an instance stops (default 300)', parseSeconds)
    .option('--initial <n>', 'instances started at deploy (default: --min)', parseNonNegativeInt)
    .addOption(
      new Option('--metric <metric>', 'what the autoscaler scales on (default concurrency)').choices([
        'concurrency',
        'rps',
      ]),
    )
    .option(
      '--target <n>',
      'per instance: requests in flight (default: --concurrency) or requests/s with --metric rps (default 200)',
      parsePositiveNumber,
    )
    .option('--target-utilization <share>', 'share of --target aimed at (default 0.7)', parseShare)
    .option(
      '--window <s>',
      'stable window, e.g. 60 or 2m; the panic window is a tenth (default 60 s)',
      parseWholeSeconds,
    )
    .option(
      '--scale-down-delay <s>',
      'a lower desire must hold this long before draining (default 0)',
      parseWholeSeconds,
    )
    .option(
      '--max-queue <n>',
      "requests held per revision while instances start (default: the node's)",
      parseNonNegativeInt,
    )
    .addOption(
      new Option(
        '--snapshot [mode]',
        'node: build a V8 startup snapshot of the init at deploy; "required" fails the deploy when it cannot be built; "auto" (the default): built in the background when init is slow',
      ).choices(['required', 'auto']),
    )
    .option('--no-snapshot', 'no V8 startup snapshot, not even automatic (overrides the manifest)')
    .option('--canary', "release as an automated canary (docs/traffic.md); default: as the manifest's rollout: says")
    .option('--no-canary', 'release at once even when the manifest has a rollout: block')
    .option('--json', "print the server's JSON answer");
  withUrl(command).action((dir: string, opts: DeployOptions) => deploy(dir, opts, ctx));
}

async function deploy(dir: string, opts: DeployOptions, ctx: CliContext): Promise<void> {
  // Validate everything local before touching the network: overrides, URL, then the directory.
  const overrides = buildOverrides(opts);
  const client = clientFor(opts, ctx);
  const abs = resolve(ctx.cwd, dir);

  const packed = await packDirectory(abs);
  const { stderr } = ctx;
  await writeLine(
    stderr,
    `packing ${dir}… ${packed.files} ${packed.files === 1 ? 'file' : 'files'}, ${formatBytes(packed.bytes)}`,
  );
  await writeLine(stderr, `uploading ${formatBytes(packed.archive.length)}…`);

  // Streams the archive so "building…" appears when the last byte has gone out, which is when the
  // wait switches from our upload to the server's unpack and build.
  const archive = packed.archive;
  const CHUNK = 64 * 1024;
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= archive.length) {
        controller.close();
        stderr.write('building…\n');
        return;
      }
      controller.enqueue(archive.subarray(offset, offset + CHUNK));
      offset += CHUNK;
    },
  });

  const res = await client.request('/api/v1/functions', {
    method: 'POST',
    query: {
      name: basename(abs),
      config: Object.keys(overrides).length > 0 ? JSON.stringify(overrides) : undefined,
      canary: opts.canary === undefined ? undefined : String(opts.canary),
    },
    headers: { 'content-type': 'application/gzip', 'content-length': String(archive.length) },
    body,
  });
  if (!res.ok) throw await toApiError(res);
  const result = (await res.json()) as DeployResult;

  if (opts.json) return printJson(ctx, result);
  if (result.created === false || res.status === 200) {
    await writeLine(ctx.stdout, `unchanged: ${result.function} ${result.revision} (identical source and config)`);
  } else {
    await writeLine(ctx.stdout, `ready: ${result.function} ${result.revision}  ${result.url}`);
  }
  if (result.rollout)
    await writeLine(stderr, `canary: ${describeRelease(result)}; follow it with \`nimbus rollout ${result.function}\``);
  else if (result.percent === 0)
    await writeLine(
      stderr,
      `note: ${result.revision} gets no traffic (traffic is pinned): test it at ${result.url.replace(/\/$/, '')}@${result.revision}/, send traffic with \`nimbus traffic ${result.function} latest=100\``,
    );
  // On stderr with the progress lines: a failed snapshot is a warning, the deploy itself worked.
  if (result.snapshot) await writeLine(stderr, `snapshot: ${formatSnapshot(result.snapshot)}`);
  if (result.checkpoint) await writeLine(stderr, `criu restores: ${formatCheckpoint(result.checkpoint)}`);
  if (result.triggers) {
    const parts = (['created', 'updated', 'deleted'] as const)
      .filter((k) => result.triggers![k].length > 0)
      .map((k) => `${k} ${result.triggers![k].join(', ')}`);
    await writeLine(ctx.stdout, `triggers: ${parts.join('; ')}`);
  }
}

function describeRelease(result: DeployResult): string {
  const r = result.rollout!;
  return `${r.canary} gets ${r.percent}% (steps ${r.settings.steps.join(' → ')}, every ${r.settings.interval} s)`;
}
