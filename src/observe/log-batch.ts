/**
 * How a batch of log records goes from the main thread to the log writer thread (log-worker.ts):
 * columns, not objects. Posting an array of records costs a structured clone of every object
 * (≈ 0.6 µs a record), one JSON string ≈ 0.8 µs; these columns ≈ 0.07 µs (bench/observe.ts), all
 * of it on the main thread, which is the one that must stay cheap (docs/observability.md).
 */
import type { LogRecord } from './log-store.js';

export interface LogBatch {
  n: number;
  /** Per record: time, status, durationMs, cold (1/0); NaN where the record has none. */
  nums: Float64Array;
  /** Per record: the length of each of its STRS strings in `text`; -1 where the record has none, SAME. */
  lens: Int32Array;
  /** The strings of all records, one after the other. */
  text: string;
}

const NUMS = 4;
/** Strings per record: function, revision, instance, requestId, stream, line, error, traceId. */
const STRS = 8;
/** A length that says: the same string as the record before. */
const SAME = -2;
/** The columns of the `logs` table, in the order `decodeBatch` gives each record's values. */
export const LOG_COLUMNS =
  '(time, function, revision, instance, request_id, stream, line, status, duration_ms, cold, error, trace_id)';
export const VALUES_PER_RECORD = 12;

export function encodeBatch(records: readonly LogRecord[]): LogBatch {
  const n = records.length;
  const nums = new Float64Array(n * NUMS);
  const lens = new Int32Array(n * STRS);
  let text = '';
  let at = 0;
  // The record before's strings: function, revision, instance and stream mostly repeat, and a
  // repeat costs a comparison (the same string object) instead of a copy.
  const prev: (string | undefined)[] = new Array(STRS);
  // Written out field by field: a loop over field names would make every read a keyed lookup.
  const str = (s: string | undefined, k: number) => {
    if (s === undefined || s === null) lens[at++] = -1;
    else if (s === prev[k]) lens[at++] = SAME;
    else {
      lens[at++] = s.length;
      text += s;
      prev[k] = s;
    }
  };
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    const x = i * NUMS;
    nums[x] = r.time;
    nums[x + 1] = r.status ?? Number.NaN;
    nums[x + 2] = r.durationMs ?? Number.NaN;
    nums[x + 3] = r.cold === undefined ? Number.NaN : r.cold ? 1 : 0;
    str(r.function, 0);
    str(r.revision, 1);
    str(r.instance, 2);
    str(r.requestId, 3);
    str(r.stream, 4);
    str(r.line, 5);
    str(r.error, 6);
    str(r.traceId, 7);
  }
  return { n, nums, lens, text };
}

/**
 * The batch as SQL values, VALUES_PER_RECORD per record in LOG_COLUMNS order (null where absent),
 * and each record's function and line length, which retention counts.
 */
export function decodeBatch(b: LogBatch): { values: unknown[]; functions: string[]; lineLengths: number[] } {
  const values: unknown[] = new Array(b.n * VALUES_PER_RECORD);
  const functions: string[] = new Array(b.n);
  const lineLengths: number[] = new Array(b.n);
  const strings: (string | null)[] = new Array(STRS);
  const last: string[] = new Array(STRS);
  const num = (x: number) => (Number.isNaN(x) ? null : x);
  let pos = 0;
  for (let i = 0; i < b.n; i++) {
    for (let k = 0; k < STRS; k++) {
      const len = b.lens[i * STRS + k]!;
      if (len === SAME) strings[k] = last[k]!;
      else if (len < 0) strings[k] = null;
      else {
        strings[k] = b.text.slice(pos, pos + len);
        last[k] = strings[k]!;
        pos += len;
      }
    }
    const [fn, revision, instance, requestId, stream, line, error, traceId] = strings;
    const at = i * VALUES_PER_RECORD;
    values[at] = b.nums[i * NUMS];
    values[at + 1] = fn;
    values[at + 2] = revision;
    values[at + 3] = instance;
    values[at + 4] = requestId || null;
    values[at + 5] = stream;
    values[at + 6] = line;
    values[at + 7] = num(b.nums[i * NUMS + 1]!);
    values[at + 8] = num(b.nums[i * NUMS + 2]!);
    values[at + 9] = num(b.nums[i * NUMS + 3]!);
    values[at + 10] = error || null;
    values[at + 11] = traceId || null;
    functions[i] = fn!;
    lineLengths[i] = line!.length;
  }
  return { values, functions, lineLengths };
}
