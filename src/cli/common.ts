import { type Command, Option } from 'commander';
import { type ApiClient, createApiClient } from './api-client.js';
import { type CliContext, DEFAULT_URL, writeLine } from './context.js';

/** Adds `--url` to a client command. Its default is resolved in `clientFor`, so the env is the injected one. */
export function withUrl(command: Command): Command {
  return command.addOption(new Option('--url <url>', `Nimbus server (env NIMBUS_URL, default ${DEFAULT_URL})`));
}

export function clientFor(opts: { url?: string }, ctx: CliContext): ApiClient {
  // An empty NIMBUS_URL counts as unset, as shells leave it after `NIMBUS_URL= nimbus …`.
  return createApiClient({ url: opts.url ?? (ctx.env.NIMBUS_URL || DEFAULT_URL) });
}

export function printJson(ctx: CliContext, value: unknown): Promise<void> {
  return writeLine(ctx.stdout, JSON.stringify(value, null, 2));
}

/** The short form of a sha256 digest, as git shows commits. */
export function shortDigest(digest: string | undefined): string {
  return digest ? digest.slice(0, 12) : '-';
}
