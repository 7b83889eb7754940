import { AsyncLocalStorage } from 'node:async_hooks';
import { formatWithOptions } from 'node:util';
import { LOG_MARK, LOG_SEP } from './protocol.js';

/** The request id of the request being served, carried across awaits. */
export const currentRequest = new AsyncLocalStorage<string>();

type Out = NodeJS.WriteStream;

function write(stream: Out, args: unknown[]): void {
  const text = formatWithOptions({ colors: false }, ...args);
  const id = currentRequest.getStore();
  if (id === undefined) {
    stream.write(`${text}\n`);
    return;
  }
  // Every line gets the mark: the host splits on newlines, and a stack trace must stay tagged.
  const mark = LOG_MARK + id + LOG_SEP;
  stream.write(`${mark}${text.replaceAll('\n', `\n${mark}`)}\n`);
}

/**
 * Replaces the console's printing methods so lines printed while serving a request carry its id.
 * Output written straight to process.stdout is left alone (and so has no request id).
 */
export function installConsole(): void {
  const out = process.stdout;
  const err = process.stderr;
  console.log = (...args: unknown[]) => write(out, args);
  console.info = console.log;
  console.debug = console.log;
  console.error = (...args: unknown[]) => write(err, args);
  console.warn = console.error;
  console.trace = (...args: unknown[]) => {
    const trace = { name: 'Trace', message: formatWithOptions({ colors: false }, ...args), stack: '' };
    Error.captureStackTrace(trace, console.trace);
    write(err, [trace.stack]);
  };
}
