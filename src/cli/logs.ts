import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { toApiError } from './api-client.js';
import type { LogRecord } from './api-types.js';
import { clientFor, printJson, withUrl } from './common.js';
import { type CliContext, writeLine } from './context.js';
import { parseSince } from './options.js';

interface LogsOptions {
  url?: string;
  follow?: boolean;
  limit?: number;
  since?: string;
  requestId?: string;
  request?: string;
  status?: string;
  until?: string;
  requests?: boolean;
  json?: boolean;
}

function parseLimit(raw: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= 1000)) throw new InvalidArgumentError('Expected a whole number from 1 to 1000.');
  return n;
}

export function registerLogs(program: Command, ctx: CliContext): void {
  const command = program
    .command('logs')
    .description("Print a function's log lines (stdout, stderr and platform events)")
    .argument('<name>', 'function name')
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('--limit <n>', 'most recent lines to print first (default 100, max 1000)', parseLimit)
    .option('--since <time>', 'only lines after an ISO time, epoch ms, or a duration ago (30s, 10m, 2h)')
    .option('--request-id <id>', 'only the lines of one request (see the x-nimbus-request-id header)')
    .option('--request <id>', 'same as --request-id')
    .option('--status <status>', 'only requests that got this status (5xx, 404, 400-499), with their lines')
    .option('--until <time>', 'only records before an ISO time, epoch ms, or a duration ago')
    .option('--requests', 'only the one-per-invocation records (status, duration, cold or warm)')
    .option('--json', 'print records as JSON (one per line with --follow)');
  withUrl(command).action((name: string, opts: LogsOptions) => logs(name, opts, ctx));
}

/** `TIME [rN inst] [requestId] line`; the request id part is left out when the line has none. */
export function formatLogRecord(r: LogRecord): string {
  const request = r.requestId ? ` [${r.requestId}]` : '';
  // A request record reads like Lambda's REPORT line: it ends the request's lines.
  const line = r.stream === 'request' ? `REPORT ${r.line}` : r.line;
  return `${r.time} [${r.revision} ${r.instance}]${request} ${line}`;
}

async function logs(name: string, opts: LogsOptions, ctx: CliContext): Promise<void> {
  const client = clientFor(opts, ctx);
  const query = {
    limit: opts.limit === undefined ? undefined : String(opts.limit),
    since: opts.since === undefined ? undefined : parseSince(opts.since, ctx.now()),
    requestId: opts.requestId ?? opts.request,
    status: opts.status,
    until: opts.until === undefined ? undefined : parseSince(opts.until, ctx.now()),
    kind: opts.requests ? 'request' : undefined,
    follow: opts.follow ? 'true' : undefined,
  };
  const path = `/api/v1/functions/${encodeURIComponent(name)}/logs`;
  const print = (r: LogRecord) => writeLine(ctx.stdout, opts.json ? JSON.stringify(r) : formatLogRecord(r));

  if (!opts.follow) {
    const { logs } = await client.json<{ logs: LogRecord[] }>(path, { query });
    if (opts.json) return printJson(ctx, { logs });
    for (const r of logs) await print(r);
    return;
  }

  // Ctrl-C ends a follow normally (exit 0): it is the only way to stop one.
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    const res = await client.request(path, { query, signal: abort.signal, headers: { accept: 'text/event-stream' } });
    if (!res.ok) throw await toApiError(res);
    if (res.body) for await (const record of readEvents(res.body)) await print(record);
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/**
 * Server-sent events → parsed records. Only `data:` fields matter here (multi-line data joined with
 * newlines, per the SSE spec); comments (`:` keep-alives) and other fields are skipped.
 */
export async function* readEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<LogRecord> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (data.length > 0) yield JSON.parse(data.join('\n')) as LogRecord;
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
      nl = buffer.indexOf('\n');
    }
  }
}
