import type { Readable } from 'node:stream';
import { LOG_MARK, LOG_SEP } from '../guest/protocol.js';

/** One parsed output line: the clean text, and the request id when the guest marked it. */
export interface OutputLine {
  line: string;
  requestId?: string;
}

/**
 * Longest line (UTF-16 units) kept whole; a longer one is cut into pieces of this size so a runaway
 * print cannot grow memory. Only the first piece of a cut marked line keeps its request id.
 */
export const MAX_LINE_LENGTH = 16 * 1024;

/** Splits a guest's `\x1e` + requestId + `\x1f` + text marker off a line. */
export function parseLine(raw: string): OutputLine {
  if (raw.charCodeAt(0) !== 0x1e) return { line: raw };
  const sep = raw.indexOf(LOG_SEP);
  if (sep === -1) return { line: raw.slice(LOG_MARK.length) };
  return { line: raw.slice(sep + 1), requestId: raw.slice(1, sep) };
}

/** Reads a stream line by line (UTF-8, `\n` or `\r\n`), calling `onLine` for each, including a last unterminated one. */
export function readLines(stream: Readable, onLine: (line: OutputLine) => void): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    let text = partial + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      emit(text.slice(start, end));
      start = nl + 1;
    }
    text = text.slice(start);
    while (text.length > MAX_LINE_LENGTH) {
      emit(text.slice(0, MAX_LINE_LENGTH));
      text = text.slice(MAX_LINE_LENGTH);
    }
    partial = text;
  });
  stream.on('end', () => {
    if (partial) emit(partial);
    partial = '';
  });
  function emit(raw: string): void {
    const parsed = parseLine(raw);
    if (raw.length > MAX_LINE_LENGTH) {
      // A huge single line: keep the request id, cut the text.
      for (let i = 0; i < parsed.line.length; i += MAX_LINE_LENGTH)
        onLine({ ...parsed, line: parsed.line.slice(i, i + MAX_LINE_LENGTH) });
    } else onLine(parsed);
  }
}
