import { Command, CommanderError } from 'commander';
import { ApiError, describeApiError } from './api-client.js';
import { registerDlq } from './async.js';
import type { CliContext } from './context.js';
import { registerDeploy } from './deploy.js';
import { CliError, oneLine } from './errors.js';
import { registerFunctions } from './functions.js';
import { registerInstances } from './instances.js';
import { registerInvoke } from './invoke.js';
import { registerLogs } from './logs.js';
import { registerServe, type ServeHook } from './serve.js';
import { registerTraffic } from './traffic.js';
import { registerTriggers } from './triggers.js';
import { registerUsage } from './usage.js';

export { ApiError } from './api-client.js';
export type { CliContext } from './context.js';
export type { ServeHook, ServeOptions } from './serve.js';

/** Seams for the composition root and for tests. Everything is optional; the defaults are the real process's. */
export interface CliHooks {
  /** Runs `nimbus serve`; without it, `serve` fails with exit 1. */
  serve?: ServeHook;
  /** Overrides stdout/stderr/stdin, env, cwd or the clock (tests). */
  context?: Partial<CliContext>;
}

/**
 * Runs the `nimbus` command and returns its exit code: 0 success, 1 failure (API error, server
 * unreachable, function answered non-2xx), 2 usage error. `argv` holds the user's arguments only
 * (`process.argv.slice(2)`). Every failure is one `nimbus: …` line on stderr; nothing is thrown.
 */
export async function runCli(argv: string[], hooks: CliHooks = {}): Promise<number> {
  const ctx: CliContext = {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    now: Date.now,
    ...hooks.context,
  };
  const program = createProgram(ctx, hooks.serve);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    return report(err, ctx);
  }
}

function createProgram(ctx: CliContext, serve: ServeHook | undefined): Command {
  // Settings before .command(): subcommands copy them when created.
  const program = new Command('nimbus')
    .description('Nimbus: deploy functions and apps, invoke them, read their logs')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      // Commander says `error: …`; the house format is `nimbus: …`, on one line.
      outputError: (s, write) => write(`nimbus: ${oneLine(s.replace(/^error: /, ''), ' ')}\n`),
    })
    .showSuggestionAfterError(true);
  registerDeploy(program, ctx);
  registerInvoke(program, ctx);
  registerDlq(program, ctx);
  registerTriggers(program, ctx);
  registerUsage(program, ctx);
  registerTraffic(program, ctx);
  registerInstances(program, ctx);
  registerFunctions(program, ctx);
  registerLogs(program, ctx);
  registerServe(program, ctx, serve);
  return program;
}

function report(err: unknown, ctx: CliContext): number {
  if (err instanceof CommanderError) {
    // Help and version are "errors" only to commander's control flow.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return 0;
    // Already printed through outputError (or help was shown for a missing command).
    return 2;
  }
  let message: string;
  let exitCode = 1;
  if (err instanceof ApiError) message = describeApiError(err);
  else if (err instanceof CliError) {
    message = err.message;
    exitCode = err.exitCode;
  } else message = err instanceof Error ? err.message : String(err);
  ctx.stderr.write(`nimbus: ${oneLine(message)}\n`);
  return exitCode;
}
