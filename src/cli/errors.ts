/**
 * Failures the CLI reports itself. Each carries its exit code so `runCli` can turn any of them
 * into one `nimbus: …` line on stderr: 2 for usage errors (bad flags, caught before any request),
 * 1 for everything else.
 */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A bad flag or argument: exit code 2, reported before anything is sent. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** Messages may carry newlines (esbuild output, stacks); the CLI promises one line per failure. */
export function oneLine(message: string, separator = ' | '): string {
  return message
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean)
    .join(separator);
}
