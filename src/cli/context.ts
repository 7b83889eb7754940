/**
 * What a command needs from the outside world, injected so tests can run commands in-process
 * with captured output, a chosen environment and a fixed clock.
 */
export interface CliContext {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
  cwd: string;
  now: () => number;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Writes a chunk and waits for the stream to accept more, so large bodies do not pile up in memory. */
export function write(stream: NodeJS.WritableStream, chunk: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    // The callback fires once the chunk is flushed (or failed), which is all the backpressure we need.
    stream.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

export function writeLine(stream: NodeJS.WritableStream, line = ''): Promise<void> {
  return write(stream, `${line}\n`);
}
