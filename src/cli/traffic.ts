import type { Command } from 'commander';
import type { RevisionView, TrafficView } from '../api/traffic-service.js';
import type { TrafficTarget } from '../core/types.js';
import type { RolloutRecord } from '../rollout/types.js';
import { clientFor, printJson, shortDigest, withUrl } from './common.js';
import { type CliContext, writeLine } from './context.js';
import { UsageError } from './errors.js';
import { formatAge, formatFields, formatTable } from './table.js';

const fnPath = (name: string, rest = '') => `/api/v1/functions/${encodeURIComponent(name)}${rest}`;

/** `r3=90` / `latest=10` arguments → weighted targets. */
export function parseTargets(args: string[]): TrafficTarget[] {
  return args.map((arg) => {
    const m = /^(latest|r[1-9][0-9]*)=(\d{1,3})$/.exec(arg);
    if (!m)
      throw new UsageError(`expected REVISION=PERCENT or latest=PERCENT (e.g. r3=90), got ${JSON.stringify(arg)}`);
    const percent = Number(m[2]);
    return m[1] === 'latest' ? { latest: true, percent } : { revision: m[1], percent };
  });
}

/** `--tag NAME=REV`, repeatable. */
function collectTag(raw: string, previous: [string, string][] = []): [string, string][] {
  const eq = raw.indexOf('=');
  if (eq <= 0 || eq === raw.length - 1)
    throw new UsageError(`--tag: expected NAME=REVISION, got ${JSON.stringify(raw)}`);
  return [...previous, [raw.slice(0, eq), raw.slice(eq + 1)]];
}

/**
 * The spec to PUT: the given weights (else the current ones), then the current tags as tag-only
 * entries, minus `untag`, with `tags` added or moved.
 */
export function buildSpec(
  current: TrafficTarget[],
  weights: TrafficTarget[],
  tags: [string, string][],
  untag: string[],
): TrafficTarget[] {
  const base = weights.length > 0 ? weights : current.filter((t) => t.percent > 0).map(({ tag: _, ...t }) => t);
  const tagged = new Map<string, TrafficTarget>();
  for (const t of current)
    if (t.tag)
      tagged.set(t.tag, { ...(t.latest ? { latest: true } : { revision: t.revision }), percent: 0, tag: t.tag });
  for (const name of untag) tagged.delete(name);
  for (const [name, rev] of tags)
    tagged.set(name, { ...(rev === 'latest' ? { latest: true } : { revision: rev }), percent: 0, tag: name });
  return [...base, ...tagged.values()];
}

export function formatTraffic(view: TrafficView): string {
  const lines = [
    formatTable(
      ['REVISION', 'TRAFFIC', 'TAGS'],
      view.effective.map((e) => [e.revision, `${e.percent}%`, e.tags.join(', ') || '-']),
    ),
    '',
    `spec: ${view.traffic.map(describeTarget).join(', ')}  (latest = ${view.latestReady})`,
  ];
  if (view.rollout)
    lines.push(`rollout: canary ${view.rollout.canary} at ${view.rollout.percent}% (nimbus rollout ${view.function})`);
  return lines.join('\n');
}

const describeTarget = (t: TrafficTarget) =>
  `${t.latest ? 'latest' : t.revision}=${t.percent}${t.tag ? ` @${t.tag}` : ''}`;

export function formatRollout(r: RolloutRecord, now: number): string {
  const s = r.settings;
  const head = formatFields([
    ['function', r.function],
    ['canary', `${r.canary} (stable: ${r.stable.join(', ') || '-'})`],
    ['status', r.status],
    ['share', `${r.percent}%`],
    ['steps', `${s.steps.join(' → ')}, every ${s.interval} s`],
    [
      'limits',
      `error rate +${s.maxErrorRateIncrease} points, p95 × ${s.maxP95Ratio} (floor ${s.p95FloorMs} ms), ≥ ${s.minRequests} requests a step`,
    ],
    ['started', formatAge(r.startedAt, now)],
  ]);
  const stat = (w?: { requests: number; errorRate: number; p95Ms?: number }) =>
    w ? `${w.requests} req, ${w.errorRate}% err, p95 ${w.p95Ms ?? '-'} ms` : '-';
  const events = formatTable(
    ['WHEN', 'ACTION', 'SHARE', 'CANARY', 'STABLE', 'REASON'],
    r.events.map((e) => [formatAge(e.time, now), e.action, `${e.percent}%`, stat(e.canary), stat(e.stable), e.reason]),
  );
  return `${head}\n\n${events}`;
}

/** `revisions`, `traffic`, `rollback` and `rollout`: releasing revisions (docs/traffic.md). */
export function registerTraffic(program: Command, ctx: CliContext): void {
  withUrl(
    program
      .command('revisions')
      .description("List a function's revisions with their traffic, or describe one")
      .argument('<name>', 'function name')
      .argument('[id]', 'revision id, e.g. r3')
      .option('--json', "print the server's JSON answer"),
  ).action(async (name: string, id: string | undefined, opts: { url?: string; json?: boolean }) => {
    const client = clientFor(opts, ctx);
    if (id) {
      const r = await client.json<RevisionView>(fnPath(name, `/revisions/${encodeURIComponent(id)}`));
      if (opts.json) return printJson(ctx, r);
      return writeLine(
        ctx.stdout,
        formatFields([
          ['revision', `${r.id}${r.latest ? ' (newest)' : ''}${r.latestReady ? ' (latest)' : ''}`],
          ['traffic', `${r.percent}%`],
          ['tags', [r.id, ...r.tags].map((t) => `@${t}`).join(', ')],
          ['digest', r.digest],
          ['created', `${r.createdAt} (${formatAge(r.createdAt, ctx.now())})`],
          ['config', JSON.stringify(r.config)],
        ]),
      );
    }
    const answer = await client.json<{ revisions: RevisionView[] }>(fnPath(name, '/revisions'));
    if (opts.json) return printJson(ctx, answer);
    await writeLine(
      ctx.stdout,
      formatTable(
        ['ID', 'TRAFFIC', 'TAGS', 'DIGEST', 'CREATED', ''],
        answer.revisions.map((r) => [
          r.id,
          `${r.percent}%`,
          r.tags.join(', ') || '-',
          shortDigest(r.digest),
          formatAge(r.createdAt, ctx.now()),
          r.latestReady ? 'latest' : r.latest ? 'newest' : '',
        ]),
      ),
    );
  });

  withUrl(
    program
      .command('traffic')
      .description('Show or set who gets the traffic: nimbus traffic NAME r3=90 r4=10 · latest=100 · --tag canary=r4')
      .argument('<name>', 'function name')
      .argument('[targets...]', 'REVISION=PERCENT or latest=PERCENT, summing to 100')
      .option('--tag <name=rev>', 'address a revision (or latest) as /fn/NAME@TAG/ (repeatable)', collectTag)
      .option('--untag <name>', 'remove a tag (repeatable)', (v: string, p: string[] = []) => [...p, v])
      .option('--json', "print the server's JSON answer"),
  ).action(
    async (
      name: string,
      args: string[],
      opts: { url?: string; json?: boolean; tag?: [string, string][]; untag?: string[] },
    ) => {
      const weights = parseTargets(args);
      const client = clientFor(opts, ctx);
      let view = await client.json<TrafficView>(fnPath(name, '/traffic'));
      if (weights.length > 0 || opts.tag || opts.untag) {
        const traffic = buildSpec(view.traffic, weights, opts.tag ?? [], opts.untag ?? []);
        view = await client.json<TrafficView>(fnPath(name, '/traffic'), {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ traffic }),
        });
      }
      if (opts.json) return printJson(ctx, view);
      await writeLine(ctx.stdout, formatTraffic(view));
    },
  );

  withUrl(
    program
      .command('rollback')
      .description('Send all traffic to the previous revision (or REV) now; during a canary, stop it')
      .argument('<name>', 'function name')
      .argument('[revision]', 'revision to go back to, e.g. r3')
      .option('--json', "print the server's JSON answer"),
  ).action(async (name: string, revision: string | undefined, opts: { url?: string; json?: boolean }) => {
    const view = await clientFor(opts, ctx).json<TrafficView & { from: string; to: string }>(
      fnPath(name, '/rollback'),
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(revision ? { revision } : {}),
      },
    );
    if (opts.json) return printJson(ctx, view);
    await writeLine(ctx.stdout, `rolled back ${name}: ${view.from} → ${view.to}\n\n${formatTraffic(view)}`);
  });

  withUrl(
    program
      .command('rollout')
      .description("Show a function's canary rollout: every step and decision")
      .argument('<name>', 'function name')
      .option('--abort', 'stop the running rollout and restore the traffic from before it')
      .option('--json', "print the server's JSON answer"),
  ).action(async (name: string, opts: { url?: string; json?: boolean; abort?: boolean }) => {
    const record = await clientFor(opts, ctx).json<RolloutRecord>(fnPath(name, '/rollout'), {
      method: opts.abort ? 'DELETE' : 'GET',
    });
    if (opts.json) return printJson(ctx, record);
    await writeLine(ctx.stdout, formatRollout(record, ctx.now()));
  });
}
