/**
 * Blob, File and FormData for the isolate, and the two form encodings bodies use:
 * application/x-www-form-urlencoded (via URLSearchParams) and multipart/form-data (RFC 7578),
 * both read (`formData()`) and written (a FormData body).
 */
import { join, TextDecoder, TextEncoder, toBytes } from './encoding.js';
import { ReadableStream } from './streams.js';
import { URLSearchParams } from './url.js';

const encoder = new TextEncoder();
type BlobPart = string | ArrayBuffer | ArrayBufferView | Blob;

export class Blob {
  /** @internal */
  readonly _bytes: Uint8Array;
  readonly type: string;
  constructor(parts: BlobPart[] = [], options: { type?: string } = {}) {
    const chunks = [...parts].map((p) =>
      p instanceof Blob ? p._bytes : typeof p === 'string' ? encoder.encode(p) : toBytes(p as ArrayBufferView),
    );
    this._bytes = join(chunks);
    const type = String(options.type ?? '');
    this.type = /^[\x20-\x7e]*$/.test(type) ? type.toLowerCase() : '';
  }
  get size() {
    return this._bytes.byteLength;
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this._bytes.slice().buffer as ArrayBuffer;
  }
  async bytes(): Promise<Uint8Array> {
    return this._bytes.slice();
  }
  async text(): Promise<string> {
    return new TextDecoder().decode(this._bytes);
  }
  slice(start = 0, end = this.size, type = ''): Blob {
    return new Blob([this._bytes.slice(start, end)], { type });
  }
  stream(): ReadableStream {
    const bytes = this._bytes.slice();
    return new ReadableStream({
      start(c) {
        if (bytes.byteLength) c.enqueue(bytes);
        c.close();
      },
    });
  }
  get [Symbol.toStringTag]() {
    return 'Blob';
  }
}

export class File extends Blob {
  readonly name: string;
  readonly lastModified: number;
  constructor(parts: BlobPart[], name: string, options: { type?: string; lastModified?: number } = {}) {
    super(parts, options);
    this.name = String(name);
    this.lastModified = options.lastModified ?? Date.now();
  }
  get [Symbol.toStringTag]() {
    return 'File';
  }
}

type Entry = [string, string | File];

function entry(name: string, value: unknown, filename?: string): Entry {
  if (!(value instanceof Blob)) return [String(name), String(value)];
  if (value instanceof File && filename === undefined) return [String(name), value];
  const file = new File([value], filename ?? (value instanceof File ? value.name : 'blob'), { type: value.type });
  return [String(name), file];
}

export class FormData {
  #entries: Entry[] = [];
  constructor(form?: unknown) {
    if (form !== undefined)
      throw new TypeError("Failed to construct 'FormData': there is no HTMLFormElement in an isolate");
  }
  append(name: string, value: string | Blob, filename?: string) {
    this.#entries.push(entry(name, value, filename));
  }
  set(name: string, value: string | Blob, filename?: string) {
    const e = entry(name, value, filename);
    const at = this.#entries.findIndex(([n]) => n === e[0]);
    if (at === -1) this.#entries.push(e);
    else this.#entries = [...this.#entries.slice(0, at), e, ...this.#entries.slice(at + 1).filter(([n]) => n !== e[0])];
  }
  get(name: string): string | File | null {
    return this.#entries.find(([n]) => n === String(name))?.[1] ?? null;
  }
  getAll(name: string): (string | File)[] {
    return this.#entries.filter(([n]) => n === String(name)).map(([, v]) => v);
  }
  has(name: string) {
    return this.#entries.some(([n]) => n === String(name));
  }
  delete(name: string) {
    this.#entries = this.#entries.filter(([n]) => n !== String(name));
  }
  forEach(fn: (value: string | File, key: string, parent: FormData) => void, self?: unknown) {
    for (const [k, v] of this.#entries) fn.call(self, v, k, this);
  }
  *entries(): IterableIterator<Entry> {
    for (const [k, v] of this.#entries) yield [k, v];
  }
  *keys(): IterableIterator<string> {
    for (const [k] of this.#entries) yield k;
  }
  *values(): IterableIterator<string | File> {
    for (const [, v] of this.#entries) yield v;
  }
  [Symbol.iterator]() {
    return this.entries();
  }
  get [Symbol.toStringTag]() {
    return 'FormData';
  }
}

/** Quotes a multipart name as browsers do (WHATWG "multipart/form-data encoding algorithm"). */
const quote = (s: string) =>
  s
    .replace(/\r\n?|\n/g, '\r\n')
    .replace(/\n/g, '%0A')
    .replace(/\r/g, '%0D')
    .replace(/"/g, '%22');

/** A FormData as a multipart/form-data body, and its content type. */
export function encodeMultipart(form: FormData): { bytes: Uint8Array; type: string } {
  const random = Array.from({ length: 2 }, () => Math.random().toString(16).slice(2, 14)).join('');
  const boundary = `----NimbusFormBoundary${random}`;
  const chunks: Uint8Array[] = [];
  for (const [name, value] of form) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"`;
    if (typeof value === 'string') {
      chunks.push(encoder.encode(`${head}\r\n\r\n${value.replace(/\r(?!\n)|(?<!\r)\n/g, '\r\n')}\r\n`));
      continue;
    }
    head += `; filename="${quote(value.name)}"\r\nContent-Type: ${value.type || 'application/octet-stream'}\r\n\r\n`;
    chunks.push(encoder.encode(head), value._bytes, encoder.encode('\r\n'));
  }
  chunks.push(encoder.encode(`--${boundary}--\r\n`));
  return { bytes: join(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

/** Where `needle` starts in `hay` at or after `from`, or -1. */
function find(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  for (let i = hay.indexOf(first, from); i !== -1 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/** A parameter of a header value (`name="x"`, `boundary=y`), unquoted; browsers escape `"` as %22. */
function param(header: string, key: string): string | undefined {
  const m = new RegExp(`(?:^|;)\\s*${key}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, 'i').exec(header);
  if (!m) return undefined;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1').replace(/%22/g, '"') : m[2];
}

const parseError = () => new TypeError('Failed to parse body as FormData.');

/** Parses a multipart/form-data body; throws a TypeError when it is malformed. */
function parseMultipart(bytes: Uint8Array, boundary: string): FormData {
  const form = new FormData();
  const decoder = new TextDecoder();
  const dash = encoder.encode(`--${boundary}`);
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  const blank = encoder.encode('\r\n\r\n');
  // The first delimiter opens the body (a preamble before it is ignored).
  let at = find(bytes, dash, 0);
  if (at === -1 || (at > 0 && (bytes[at - 2] !== 0x0d || bytes[at - 1] !== 0x0a))) throw parseError();
  at += dash.length;
  for (;;) {
    if (bytes[at] === 0x2d && bytes[at + 1] === 0x2d) return form; // `--`: the closing delimiter
    while (bytes[at] === 0x20 || bytes[at] === 0x09) at++; // transport padding
    if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) throw parseError();
    const headEnd = find(bytes, blank, at);
    if (headEnd === -1) throw parseError();
    const head = decoder.decode(bytes.subarray(at + 2, headEnd)); // empty when the part has no headers
    const end = find(bytes, delimiter, headEnd + 4);
    if (end === -1) throw parseError();
    const headers = new Map<string, string>();
    for (const line of head.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const disposition = headers.get('content-disposition') ?? '';
    const name = param(disposition, 'name');
    if (!/^form-data\b/i.test(disposition) || name === undefined) throw parseError();
    const body = bytes.subarray(headEnd + 4, end);
    const filename = param(disposition, 'filename');
    if (filename === undefined) form.append(name, decoder.decode(body));
    else form.append(name, new File([body], filename, { type: headers.get('content-type') ?? '' }));
    at = end + delimiter.length;
  }
}

/** `formData()` of a body with this content type. */
export function parseForm(bytes: Uint8Array, contentType: string | null): FormData {
  const essence = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (essence === 'application/x-www-form-urlencoded') {
    const form = new FormData();
    for (const [k, v] of new URLSearchParams(new TextDecoder().decode(bytes))) form.append(k, v);
    return form;
  }
  if (essence === 'multipart/form-data') {
    const boundary = param(contentType ?? '', 'boundary');
    if (!boundary) throw parseError();
    return parseMultipart(bytes, boundary);
  }
  throw new TypeError(`Content-Type was not one of "multipart/form-data" or "application/x-www-form-urlencoded".`);
}
