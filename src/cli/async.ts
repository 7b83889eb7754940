import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import { toApiError } from './api-client.js';
import { clientFor, printJson, withUrl } from './common.js';
import { type CliContext, write, writeLine } from './context.js';
import { CliError } from './errors.js';
import { formatAge, formatFields, formatTable } from './table.js';

/** An async invocation as the API shows it (`GET /api/v1/invocations/ID`). */
export interface InvocationView {
  id: string;
  function: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'dead';
  attempts: number;
  createdAt: string;
  enqueuedAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  nextAttemptAt?: string;
  lastError?: string;
  request: { method: string; path: string; headers: Record<string, string>; bodyBytes: number };
  result?: {
    status: number;
    headers: Record<string, string>;
    body: string;
    bodyEncoding: 'utf8' | 'base64';
    truncated: boolean;
    platformError?: string;
  };
}

const FINAL = new Set(['succeeded', 'failed', 'dead']);

/**
 * `nimbus invoke NAME --async [--wait]`: POST /async/fn/NAME/PATH. Prints the invocation id; with
 * `--wait`, polls until it ends and prints the function's answer as `invoke` does (exit 1 unless
 * it succeeded).
 */
export async function invokeAsync(
  client: ApiClient,
  ctx: CliContext,
  name: string,
  request: { method: string; path: string; headers: Record<string, string>; body?: Uint8Array | string },
  opts: { wait?: boolean; json?: boolean; pollMs?: number },
): Promise<void> {
  const res = await client.request(`/async/fn/${encodeURIComponent(name)}${request.path}`, {
    method: request.method,
    headers: request.headers,
    body: request.body,
  });
  if (res.status !== 202) throw await toApiError(res);
  const accepted = (await res.json()) as { id: string; statusUrl: string };
  if (!opts.wait) {
    await (opts.json ? printJson(ctx, accepted) : writeLine(ctx.stdout, accepted.id));
    return;
  }
  await writeLine(ctx.stderr, `queued ${accepted.id}, waiting…`);
  let view: InvocationView;
  for (;;) {
    view = await client.json<InvocationView>(`/api/v1/invocations/${encodeURIComponent(accepted.id)}`);
    if (FINAL.has(view.status)) break;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
  }
  if (opts.json) await printJson(ctx, view);
  else if (view.result) {
    const body = Buffer.from(view.result.body, view.result.bodyEncoding === 'base64' ? 'base64' : 'utf8');
    await write(ctx.stdout, body);
    if (body.length > 0 && body[body.length - 1] !== 10 && view.result.bodyEncoding === 'utf8')
      await write(ctx.stdout, '\n');
  }
  if (view.status !== 'succeeded') {
    throw new CliError(
      `invocation ${view.id} ${view.status} after ${view.attempts} attempt${view.attempts === 1 ? '' : 's'}` +
        (view.lastError ? `: ${view.lastError}` : ''),
    );
  }
}

/** `nimbus dlq ls NAME`, `nimbus dlq show ID`, `nimbus dlq redrive NAME [ID…]`. */
export function registerDlq(program: Command, ctx: CliContext): void {
  const dlq = program.command('dlq').description("Inspect and re-drive a function's dead-letter queue");

  withUrl(
    dlq
      .command('ls')
      .alias('list')
      .description('List the dead-lettered invocations of a function, newest first')
      .argument('<name>', 'function name')
      .option('--json', "print the server's JSON answer"),
  ).action(async (name: string, opts: { url?: string; json?: boolean }) => {
    const client = clientFor(opts, ctx);
    const answer = await client.json<{ invocations: InvocationView[] }>(
      `/api/v1/functions/${encodeURIComponent(name)}/dlq`,
    );
    if (opts.json) return printJson(ctx, answer);
    if (answer.invocations.length === 0) return writeLine(ctx.stdout, `${name}: the dead-letter queue is empty`);
    await writeLine(
      ctx.stdout,
      formatTable(
        ['ID', 'ATTEMPTS', 'DIED', 'REQUEST', 'LAST ERROR'],
        answer.invocations.map((v) => [
          v.id,
          String(v.attempts),
          formatAge(v.finishedAt, ctx.now()),
          `${v.request.method} ${v.request.path}`,
          v.lastError ?? '-',
        ]),
      ),
    );
  });

  withUrl(
    dlq
      .command('show')
      .alias('get')
      .description('Show one invocation: status, attempts, times, last error and result')
      .argument('<id>', 'invocation id')
      .option('--json', "print the server's JSON answer"),
  ).action(async (id: string, opts: { url?: string; json?: boolean }) => {
    const view = await clientFor(opts, ctx).json<InvocationView>(`/api/v1/invocations/${encodeURIComponent(id)}`);
    if (opts.json) return printJson(ctx, view);
    await writeLine(ctx.stdout, formatInvocation(view));
  });

  withUrl(
    dlq
      .command('redrive')
      .description('Queue dead-lettered invocations again (all of the function, or the ids given)')
      .argument('<name>', 'function name')
      .argument('[ids...]', 'invocation ids (default: all)')
      .option('--json', "print the server's JSON answer"),
  ).action(async (name: string, ids: string[], opts: { url?: string; json?: boolean }) => {
    const answer = await clientFor(opts, ctx).json<{ redriven: string[] }>(
      `/api/v1/functions/${encodeURIComponent(name)}/dlq/redrive`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(ids.length > 0 ? { ids } : {}),
      },
    );
    if (opts.json) return printJson(ctx, answer);
    await writeLine(
      ctx.stdout,
      answer.redriven.length === 0
        ? `${name}: nothing to re-drive`
        : `re-driven ${answer.redriven.length}: ${answer.redriven.join(' ')}`,
    );
  });
}

export function formatInvocation(v: InvocationView): string {
  const fields: [string, string][] = [
    ['id', v.id],
    ['function', v.function],
    ['status', v.status],
    ['attempts', String(v.attempts)],
    ['request', `${v.request.method} ${v.request.path} (${v.request.bodyBytes} B)`],
    ['created', v.createdAt],
  ];
  if (v.finishedAt) fields.push(['finished', v.finishedAt]);
  if (v.nextAttemptAt) fields.push(['next attempt', v.nextAttemptAt]);
  if (v.lastError) fields.push(['last error', v.lastError]);
  if (v.result) {
    fields.push(['result', `HTTP ${v.result.status}${v.result.truncated ? ' (body truncated)' : ''}`]);
    if (v.result.bodyEncoding === 'utf8' && v.result.body) fields.push(['body', v.result.body.slice(0, 500)]);
  }
  return formatFields(fields);
}
