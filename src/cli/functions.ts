import type { Command } from 'commander';
import type { FunctionDetail, FunctionSummary, ScaleRevisionView } from './api-types.js';
import { formatCheckpoint } from './checkpoint-format.js';
import { clientFor, printJson, shortDigest, withUrl } from './common.js';
import { type CliContext, writeLine } from './context.js';
import { formatScaleConfig, formatScaleViews } from './scale-format.js';
import { formatNoSnapshot, formatSnapshot } from './snapshot-format.js';
import { formatAge, formatFields, formatTable } from './table.js';

/** `ls`, `get` and `rm`: the read and delete side of the functions resource. */
export function registerFunctions(program: Command, ctx: CliContext): void {
  const ls = program
    .command('ls')
    .alias('list')
    .description('List functions')
    .option('--json', "print the server's JSON answer");
  withUrl(ls).action(async (opts: { url?: string; json?: boolean }) => {
    const { functions } = await clientFor(opts, ctx).json<{ functions: FunctionSummary[] }>('/api/v1/functions');
    if (opts.json) return printJson(ctx, { functions });
    if (functions.length === 0) return writeLine(ctx.stderr, 'no functions yet: deploy one with `nimbus deploy DIR`');
    await writeLine(ctx.stdout, formatFunctionList(functions, ctx.now()));
  });

  const get = program
    .command('get')
    .alias('describe')
    .description("Show a function's config, revisions and instances")
    .argument('<name>', 'function name')
    .option('--json', "print the server's JSON answer");
  withUrl(get).action(async (name: string, opts: { url?: string; json?: boolean }) => {
    const client = clientFor(opts, ctx);
    const path = `/api/v1/functions/${encodeURIComponent(name)}`;
    const detail = await client.json<FunctionDetail>(path);
    if (opts.json) return printJson(ctx, detail);
    // The autoscaler's live view; a server without the endpoint just shows none.
    const scale = await client
      .json<{ revisions: ScaleRevisionView[] }>(`${path}/scale`)
      .then((r) => r.revisions)
      .catch(() => undefined);
    await writeLine(ctx.stdout, formatFunctionDetail(detail, ctx.now(), scale));
  });

  const rm = program
    .command('rm')
    .alias('delete')
    .description('Delete a function and its revisions')
    .argument('<name>', 'function name');
  withUrl(rm).action(async (name: string, opts: { url?: string }) => {
    const res = await clientFor(opts, ctx).json<{ deleted: string }>(`/api/v1/functions/${encodeURIComponent(name)}`, {
      method: 'DELETE',
    });
    await writeLine(ctx.stdout, `deleted ${res.deleted ?? name}`);
  });
}

function instanceCount(i: FunctionSummary['instances'] | undefined): string {
  if (!i) return '-';
  // `busy` is the part of `ready` with requests in flight: not counted twice.
  const total = i.ready + i.starting;
  return i.starting > 0 ? `${total} (${i.starting} starting)` : String(total);
}

export function formatFunctionList(functions: FunctionSummary[], now: number): string {
  return formatTable(
    ['NAME', 'REVISION', 'RUNTIME', 'INSTANCES', 'UPDATED', 'URL'],
    functions.map((f) => [
      f.name,
      f.latestRevision,
      f.runtime,
      instanceCount(f.instances),
      formatAge(f.updatedAt, now),
      f.url,
    ]),
  );
}

export function formatFunctionDetail(d: FunctionDetail, now: number, scale?: ScaleRevisionView[]): string {
  const f = d.function;
  const c = d.config;
  const latestSnapshot = d.revisions.find((r) => r.id === f.latestRevision)?.snapshot;
  const latestCheckpoint = d.revisions.find((r) => r.id === f.latestRevision)?.checkpoint;
  const config: [string, string][] = [
    ['runtime', c.runtime],
    c.runtime === 'app' ? ['command', (c.command ?? []).join(' ') || '-'] : ['handler', c.handler ?? '(default)'],
    ['memory', `${c.memory} MB`],
    ['timeout', `${c.timeout} s`],
    ['concurrency', String(c.concurrency)],
    ...(latestSnapshot
      ? [['snapshot', formatSnapshot(latestSnapshot)] as [string, string]]
      : formatNoSnapshot(c)
        ? [['snapshot', formatNoSnapshot(c)!] as [string, string]]
        : []),
    ...(latestCheckpoint ? [['criu restores', formatCheckpoint(latestCheckpoint)] as [string, string]] : []),
    ...(c.scale ? formatScaleConfig(c.scale) : [['scale', '-'] as [string, string]]),
    [
      'env',
      Object.keys(c.env ?? {})
        .sort()
        .join(', ') || '-',
    ],
  ];
  const sections = [
    formatFields([
      ['name', f.name],
      ['revision', `${f.latestRevision} (${f.revisionCount} in all)`],
      ...trafficField(f),
      ['url', f.url],
      ['updated', formatAge(f.updatedAt, now)],
    ]),
    `config:\n${formatFields(config, '  ')}`,
    `revisions:\n${formatTable(
      ['ID', 'DIGEST', 'CREATED'],
      [...d.revisions]
        .sort((a, b) => b.number - a.number)
        .map((r) => [r.id, shortDigest(r.digest), formatAge(r.createdAt, now)]),
    )}`,
    d.instances.length === 0
      ? 'instances: none (scaled to zero)'
      : `instances:\n${formatTable(
          ['ID', 'REVISION', 'STATE', 'IN FLIGHT', 'REQUESTS', 'STARTED'],
          d.instances.map((i) => [
            i.id,
            i.revision,
            i.state,
            String(i.inFlight),
            String(i.requests),
            formatAge(i.startedAt, now),
          ]),
        )}`,
    ...(scale ? [formatScaleViews(scale)] : []),
  ];
  if (d.startError) sections.unshift(`CrashLoop: the latest start failed, retrying with back-off: ${d.startError}`);
  if (d.sandbox && !d.sandbox.sandboxed)
    sections.unshift(`WARNING: instances run unsandboxed: ${d.sandbox.warnings.join('; ')}`);
  return sections.join('\n\n');
}

/** `traffic: r1 90%, r2 10%` in `get`, when anything but the newest revision gets traffic. */
function trafficField(f: FunctionSummary): [string, string][] {
  const t = f.traffic;
  if (!t || (t.length === 1 && t[0]!.revision === f.latestRevision)) return [];
  return [['traffic', `${t.map((x) => `${x.revision} ${x.percent}%`).join(', ')} (nimbus traffic ${f.name})`]];
}
