import { LineCounter, parseDocument } from 'yaml';
import { NimbusError } from '../core/errors.js';
import type { SourceFile } from './archive.js';

/** Manifest file names, in the order they are looked for at the root of the source. */
export const MANIFEST_FILES = ['nimbus.yaml', 'nimbus.yml', 'nimbus.json'] as const;

/** A parsed manifest: its data, and where a field was written (for messages). */
export interface Manifest {
  file: string;
  data: unknown;
  /** 1-based line of the value at `path` (e.g. ['scale', 'max']), when known. */
  lineOf(path: readonly string[]): number | undefined;
}

const invalid = (file: string, line: number | undefined, column: number | undefined, message: string) =>
  new NimbusError(
    'NIMBUS_ERR_INVALID_MANIFEST',
    `${file}${line ? `:${line}${column ? `:${column}` : ''}` : ''}: ${message}`,
    {
      details: { file, ...(line ? { line } : {}), ...(column ? { column } : {}) },
    },
  );

/**
 * The manifest at the root of `files`, or undefined when there is none. Throws
 * NIMBUS_ERR_INVALID_MANIFEST with file, line and column on a syntax error, and when more than
 * one manifest file exists (which one wins would be a guess).
 */
export function readManifest(files: readonly SourceFile[]): Manifest | undefined {
  const found = files.filter((f) => (MANIFEST_FILES as readonly string[]).includes(f.path));
  if (found.length === 0) return undefined;
  if (found.length > 1) {
    const names = found.map((f) => f.path).join(' and ');
    throw invalid(found[0]!.path, undefined, undefined, `found ${names}: keep only one manifest`);
  }
  const { path: file, content } = found[0]!;
  const text = content.toString('utf8');
  if (file.endsWith('.json')) return parseJson(file, text);

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const error = doc.errors[0];
  if (error) {
    const pos = lineCounter.linePos(error.pos[0]);
    // yaml's own message repeats the position and quotes the source; the first line is the point.
    throw invalid(file, pos.line, pos.col, error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''));
  }
  return {
    file,
    data: doc.toJS() ?? {},
    lineOf(path) {
      const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
      return node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
    },
  };
}

function parseJson(file: string, text: string): Manifest {
  try {
    return { file, data: JSON.parse(text), lineOf: () => undefined };
  } catch (err) {
    const message = (err as Error).message;
    // V8 reports a character offset ("… in JSON at position 42"); turn it into line and column.
    const at = /position (\d+)/.exec(message);
    if (!at) throw invalid(file, undefined, undefined, message);
    const before = text.slice(0, Number(at[1]));
    const line = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    throw invalid(file, line, column, message.replace(/ in JSON at position \d+.*$/, ''));
  }
}
