import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ApiError, toApiError } from './api-client.js';
import { invokeAsync } from './async.js';
import { clientFor, withUrl } from './common.js';
import { type CliContext, write, writeLine } from './context.js';
import { CliError, UsageError } from './errors.js';
import { collectHeader } from './options.js';

const PLATFORM_ERROR_HEADER = 'x-nimbus-error';

interface InvokeOptions {
  url?: string;
  data?: string;
  method?: string;
  path?: string;
  header?: [string, string][];
  include?: boolean;
  async?: boolean;
  wait?: boolean;
  json?: boolean;
}

export function registerInvoke(program: Command, ctx: CliContext): void {
  const command = program
    .command('invoke')
    .description('Call a function through /fn/NAME/ and print its response body')
    .argument('<name>', 'function name')
    .option('-d, --data <body>', "request body: literal text/JSON, @file, or '-' for stdin")
    .option('-X, --method <method>', 'HTTP method (default POST with --data, else GET)')
    .option('--path <path>', 'path inside the function (default /)')
    .option('-H, --header <header>', "request header 'Name: value' (repeatable)", collectHeader)
    .option('-i, --include', 'print the status line and response headers to stderr')
    .option('--async', 'queue the invocation (POST /async/fn/NAME/…) and print its id')
    .option('--wait', 'with --async: wait for the invocation to end and print its answer')
    .option('--json', 'with --async: print the JSON answer (the invocation record with --wait)');
  withUrl(command).action((name: string, opts: InvokeOptions) => invoke(name, opts, ctx));
}

async function readBody(data: string, ctx: CliContext): Promise<{ body: Uint8Array | string; json: boolean }> {
  if (data === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.stdin) chunks.push(Buffer.from(chunk as Buffer));
    return { body: Buffer.concat(chunks), json: false };
  }
  if (data.startsWith('@')) {
    const file = data.slice(1);
    const body = await readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new CliError(`cannot read --data file ${file}: ${err.code ?? err.message}`);
    });
    return { body, json: false };
  }
  let json = true;
  try {
    JSON.parse(data);
  } catch {
    json = false;
  }
  return { body: data, json };
}

async function invoke(name: string, opts: InvokeOptions, ctx: CliContext): Promise<void> {
  const client = clientFor(opts, ctx);
  const method = (opts.method ?? (opts.data !== undefined ? 'POST' : 'GET')).toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`invalid --method: ${opts.method}`);
  if ((method === 'GET' || method === 'HEAD') && opts.data !== undefined) {
    throw new UsageError(`--data cannot be sent with ${method}`);
  }
  const path = opts.path ? (opts.path.startsWith('/') ? opts.path : `/${opts.path}`) : '/';

  const headers: Record<string, string> = {};
  for (const [key, value] of opts.header ?? []) headers[key.toLowerCase()] = value;
  let body: Uint8Array | string | undefined;
  if (opts.data !== undefined) {
    const read = await readBody(opts.data, ctx);
    body = read.body;
    // Literal JSON on the command line is the common case; label it so handlers can parse it.
    if (read.json && !headers['content-type']) headers['content-type'] = 'application/json';
  }

  if (opts.async || opts.wait) {
    const asyncMethod = opts.method ? method : 'POST';
    return invokeAsync(client, ctx, name, { method: asyncMethod, path, headers, body }, opts);
  }
  const res = await client.request(`/fn/${encodeURIComponent(name)}${path}`, { method, headers, body });

  if (opts.include) {
    await writeLine(ctx.stderr, `HTTP ${res.status} ${res.statusText}`.trimEnd());
    for (const [key, value] of res.headers) await writeLine(ctx.stderr, `${key}: ${value}`);
    await writeLine(ctx.stderr);
  }

  const platformError = res.headers.get(PLATFORM_ERROR_HEADER);
  if (platformError) {
    // Platform errors are small JSON bodies: read whole so the message can go to stderr too.
    const text = await res.text();
    await write(ctx.stdout, text.endsWith('\n') || text === '' ? text : `${text}\n`);
    const err = await toApiError(res, text);
    throw new ApiError(
      res.status,
      err.code ? err.message : `HTTP ${res.status}`,
      err.code ?? platformError,
      err.details,
    );
  }

  // Raw bytes, streamed: the function's body may be binary or long-running.
  if (res.body) for await (const chunk of res.body) await write(ctx.stdout, chunk);
  if (!res.ok) throw new CliError(`${name} answered ${res.status} ${res.statusText}`.trimEnd());
}
