import type { Command } from 'commander';
import { clientFor, printJson, withUrl } from './common.js';
import { type CliContext, writeLine } from './context.js';
import { UsageError } from './errors.js';
import { formatAge, formatTable } from './table.js';

interface TriggerView {
  id: string;
  type: string;
  function: string;
  config: Record<string, unknown>;
  createdAt: string;
  /** `manifest`: declared in the function's nimbus.yaml (its deploys own it); `api`: made here or through the API. */
  origin?: 'api' | 'manifest';
  status: { healthy: boolean; lastError?: string; delivered: number; failed: number; lastEventAt?: string };
}

/** `key=value` arguments → a config object; values that parse as JSON numbers/booleans are kept typed. */
export function parseConfigPairs(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`expected key=value, got ${JSON.stringify(pair)}`);
    const raw = pair.slice(eq + 1);
    out[pair.slice(0, eq)] = /^(\d+|true|false)$/.test(raw) ? JSON.parse(raw) : raw;
  }
  return out;
}

/** `nimbus triggers ls | add TYPE FUNCTION key=value… | rm ID`. */
export function registerTriggers(program: Command, ctx: CliContext): void {
  const triggers = program.command('triggers').alias('trigger').description('Event sources that invoke functions');

  withUrl(
    triggers
      .command('ls')
      .alias('list')
      .description('List triggers with their health and counts')
      .option('--json', "print the server's JSON answer"),
  ).action(async (opts: { url?: string; json?: boolean }) => {
    const answer = await clientFor(opts, ctx).json<{ triggers: TriggerView[] }>('/api/v1/triggers');
    if (opts.json) return printJson(ctx, answer);
    if (answer.triggers.length === 0)
      return writeLine(ctx.stdout, 'No triggers yet: add one with `nimbus triggers add`.');
    await writeLine(
      ctx.stdout,
      formatTable(
        ['ID', 'TYPE', 'FUNCTION', 'ORIGIN', 'HEALTHY', 'DELIVERED', 'FAILED', 'LAST EVENT', 'CONFIG / ERROR'],
        answer.triggers.map((t) => [
          t.id,
          t.type,
          t.function,
          t.origin ?? 'api',
          t.status.healthy ? 'yes' : 'no',
          String(t.status.delivered),
          String(t.status.failed),
          formatAge(t.status.lastEventAt, ctx.now()),
          t.status.lastError ? `error: ${t.status.lastError}` : JSON.stringify(t.config),
        ]),
      ),
    );
  });

  withUrl(
    triggers
      .command('add')
      .description(
        'Add a trigger: nimbus triggers add cron NAME schedule="*/5 * * * *" timezone=Europe/Paris · ' +
          'nimbus triggers add nats NAME subject=orders.created [stream=ORDERS] [url=nats://…] · ' +
          'nimbus triggers add rabbitmq NAME queue=orders · nimbus triggers add mqtt NAME topic=sensors/+ · ' +
          'nimbus triggers add redis-streams NAME stream=orders (docs/triggers.md)',
      )
      .argument('<type>', 'cron, nats, rabbitmq, mqtt, redis-streams or interval')
      .argument('<function>', 'function to invoke')
      .argument('[config...]', 'key=value settings of the source')
      .option('--id <id>', 'trigger id (default TYPE-FUNCTION-random)')
      .option('--json', "print the server's JSON answer"),
  ).action(async (type: string, fn: string, pairs: string[], opts: { url?: string; id?: string; json?: boolean }) => {
    const config = parseConfigPairs(pairs);
    const view = await clientFor(opts, ctx).json<TriggerView>('/api/v1/triggers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type, function: fn, config, ...(opts.id ? { id: opts.id } : {}) }),
    });
    if (opts.json) return printJson(ctx, view);
    await writeLine(ctx.stdout, `added: ${view.id} (${view.type} → ${view.function})`);
  });

  withUrl(
    triggers.command('rm').alias('delete').description('Stop and remove a trigger').argument('<id>', 'trigger id'),
  ).action(async (id: string, opts: { url?: string }) => {
    await clientFor(opts, ctx).json(`/api/v1/triggers/${encodeURIComponent(id)}`, { method: 'DELETE' });
    await writeLine(ctx.stdout, `removed: ${id}`);
  });
}
