import type { Command } from 'commander';
import type { InstanceWindow } from './api-types.js';
import { clientFor, printJson, withUrl } from './common.js';
import { type CliContext, write, writeLine } from './context.js';
import { parsePositiveInt } from './options.js';
import { formatAge, formatBytes, formatTable } from './table.js';

interface InstancesOptions {
  url?: string;
  json?: boolean;
  watch?: boolean;
  interval?: number;
  /** Refreshes before `--watch` stops by itself (tests; unlimited when unset). */
  count?: number;
}

/** `nimbus instances NAME`: each instance's state, load, CPU and memory — what the function really uses. */
export function registerInstances(program: Command, ctx: CliContext): void {
  const command = program
    .command('instances')
    .alias('ps')
    .description("Show a function's instances: state, requests, CPU and memory, and why recent ones ended")
    .argument('<name>', 'function name')
    .option('-w, --watch', 'refresh every second until Ctrl-C')
    .option('--interval <seconds>', 'refresh interval with --watch (default 1)', parsePositiveInt)
    .option('--count <n>', 'stop --watch after n refreshes', parsePositiveInt)
    .option('--json', "print the server's JSON answer");
  withUrl(command).action(async (name: string, opts: InstancesOptions) => {
    const client = clientFor(opts, ctx);
    const path = `/api/v1/functions/${encodeURIComponent(name)}/instances`;
    for (let round = 1; ; round++) {
      const window = await client.json<InstanceWindow>(path);
      if (opts.json) await printJson(ctx, window);
      else {
        // Clear the screen between refreshes, as `watch` does.
        if (opts.watch && round > 1) await write(ctx.stdout, '\x1b[2J\x1b[H');
        await writeLine(ctx.stdout, formatInstanceWindow(window, ctx.now()));
      }
      if (!opts.watch || (opts.count !== undefined && round >= opts.count)) return;
      await new Promise((r) => setTimeout(r, (opts.interval ?? 1) * 1000));
    }
  });
}

export function formatInstanceWindow(w: InstanceWindow, now: number): string {
  const parts: string[] = [];
  if (w.sandbox && !w.sandbox.sandboxed)
    parts.push(`WARNING: instances run unsandboxed: ${w.sandbox.warnings.join('; ')}`);
  if (w.startError) parts.push(`CrashLoop: the latest start failed, retrying with back-off: ${w.startError}`);
  parts.push(
    w.instances.length === 0
      ? `${w.function}: no live instances (scaled to zero)`
      : formatTable(
          ['ID', 'REV', 'STATE', 'SINCE', 'IN FLIGHT', 'REQUESTS', 'CPU', 'MEMORY', 'PEAK', 'PIDS'],
          w.instances.map((i) => [
            i.id,
            i.revision,
            i.state,
            formatAge(i.stateSince, now),
            String(i.inFlight),
            String(i.requests),
            i.usage ? `${i.usage.cpuPercent.toFixed(1)}%` : '-',
            i.usage ? formatBytes(i.usage.memoryBytes) : '-',
            i.usage ? formatBytes(i.usage.memoryPeakBytes) : '-',
            i.usage ? String(i.usage.pids) : '-',
          ]),
        ),
  );
  if (w.recent.length > 0) {
    parts.push(
      `recently ended:\n${formatTable(
        ['ID', 'REV', 'STATE', 'ENDED', 'REQUESTS', 'REASON'],
        w.recent
          .slice(0, 10)
          .map((r) => [r.id, r.revision, r.state, formatAge(r.endedAt, now), String(r.requests), r.reason]),
      )}`,
    );
  }
  return parts.join('\n\n');
}
