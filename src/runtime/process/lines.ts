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

/** Output an instance may write per second before lines are dropped. */
export interface OutputRate {
  /** Default 1000. */
  linesPerSecond?: number;
  /** Default 1 MiB. */
  bytesPerSecond?: number;
}

export const OUTPUT_RATE_DEFAULTS = { linesPerSecond: 1000, bytesPerSecond: 1024 * 1024 } as const;

/**
 * Two token buckets (lines and bytes), each holding one second's worth, refilled continuously.
 * A line that finds either empty is dropped and counted; the caller reports the count with the
 * next line that passes (or at exit), so a flood costs the node a counter, not memory.
 */
export class OutputLimiter {
  readonly #lineRate: number;
  readonly #byteRate: number;
  readonly #now: () => number;
  #lines: number;
  #bytes: number;
  #last: number;
  #dropped = 0;

  constructor(rate: OutputRate = {}, now: () => number = Date.now) {
    this.#lineRate = rate.linesPerSecond ?? OUTPUT_RATE_DEFAULTS.linesPerSecond;
    this.#byteRate = rate.bytesPerSecond ?? OUTPUT_RATE_DEFAULTS.bytesPerSecond;
    this.#now = now;
    this.#lines = this.#lineRate;
    this.#bytes = this.#byteRate;
    this.#last = now();
  }

  /** True when a line of `length` may pass; false (and counted) when it is dropped. */
  take(length: number): boolean {
    const now = this.#now();
    const seconds = Math.max(0, now - this.#last) / 1000;
    this.#last = now;
    this.#lines = Math.min(this.#lineRate, this.#lines + seconds * this.#lineRate);
    this.#bytes = Math.min(this.#byteRate, this.#bytes + seconds * this.#byteRate);
    if (this.#lines < 1 || this.#bytes < length) {
      this.#dropped++;
      return false;
    }
    this.#lines -= 1;
    this.#bytes -= length;
    return true;
  }

  /** Lines dropped since the last call (and resets the count). */
  takeDropped(): number {
    const n = this.#dropped;
    this.#dropped = 0;
    return n;
  }

  /** The log line that reports `n` dropped lines. */
  note(n: number): string {
    return `[nimbus] … ${n} line${n === 1 ? '' : 's'} dropped: output over ${this.#lineRate} lines/s or ${this.#byteRate} bytes/s`;
  }
}
