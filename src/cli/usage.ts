import type { Command } from 'commander';
import { toApiError } from './api-client.js';
import { clientFor, printJson, withUrl } from './common.js';
import { type CliContext, write, writeLine } from './context.js';
import { parseSince } from './options.js';
import { formatBytes, formatTable } from './table.js';

interface UsageRow {
  function: string;
  hour: string;
  invocations: number;
  gbSeconds: number;
  coldStarts: number;
  egressBytes: number;
}

/** `nimbus usage [NAME]`: invocations, GB-seconds, cold starts and egress per function and hour. */
export function registerUsage(program: Command, ctx: CliContext): void {
  const command = program
    .command('usage')
    .description('Show metered use per function and hour: invocations, GB-seconds, cold starts, egress')
    .argument('[name]', 'only this function')
    .option('--since <time>', 'from an ISO time, epoch ms, or a duration ago (30m, 24h, 7d)')
    .option('--csv', 'print CSV (for spreadsheets and billing)')
    .option('--json', "print the server's JSON answer");
  withUrl(command).action(
    async (name: string | undefined, opts: { url?: string; since?: string; csv?: boolean; json?: boolean }) => {
      const q = new URLSearchParams();
      if (name) q.set('function', name);
      if (opts.since) q.set('since', parseSince(opts.since, ctx.now()));
      const client = clientFor(opts, ctx);
      if (opts.csv) {
        q.set('format', 'csv');
        const res = await client.request(`/api/v1/usage?${q}`);
        if (!res.ok) throw await toApiError(res);
        return write(ctx.stdout, await res.text());
      }
      const { usage } = await client.json<{ usage: UsageRow[] }>(`/api/v1/usage?${q}`);
      if (opts.json) return printJson(ctx, { usage });
      if (usage.length === 0) return writeLine(ctx.stderr, 'no usage recorded yet');
      await writeLine(ctx.stdout, formatUsage(usage));
    },
  );
}

export function formatUsage(rows: UsageRow[]): string {
  const total = rows.reduce(
    (t, r) => ({
      inv: t.inv + r.invocations,
      gbs: t.gbs + r.gbSeconds,
      cold: t.cold + r.coldStarts,
      egress: t.egress + r.egressBytes,
    }),
    { inv: 0, gbs: 0, cold: 0, egress: 0 },
  );
  const cells = (r: UsageRow): string[] => [
    r.function,
    r.hour.slice(0, 13).replace('T', ' ') + 'h',
    String(r.invocations),
    r.gbSeconds.toFixed(3),
    String(r.coldStarts),
    formatBytes(r.egressBytes),
  ];
  return formatTable(
    ['FUNCTION', 'HOUR (UTC)', 'INVOCATIONS', 'GB-SECONDS', 'COLD STARTS', 'EGRESS'],
    [
      ...rows.map(cells),
      ['total', '', String(total.inv), total.gbs.toFixed(3), String(total.cold), formatBytes(total.egress)],
    ],
  );
}
