/**
 * URL and URLSearchParams for the isolate. A compact parser for what fetch handlers meet
 * (absolute http(s) and other hierarchical URLs, relative references against a base, percent-
 * encoded queries); not the full WHATWG algorithm (no IDNA, no IPv6 normalisation). docs/isolate.md.
 */

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };
const ABSOLUTE = /^([a-zA-Z][a-zA-Z0-9+.-]*:)(\/\/([^/?#]*))?([^?#]*)(\?[^#]*)?(#.*)?$/;

function normalisePath(path: string): string {
  const out: string[] = [];
  const parts = path.split('/');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === '..') {
      if (out.length > 1) out.pop();
      if (i === parts.length - 1) out.push('');
    } else if (p === '.') {
      if (i === parts.length - 1) out.push('');
    } else out.push(p);
  }
  const joined = out.join('/');
  return joined.startsWith('/') ? joined : `/${joined}`;
}

/** Spaces, controls and non-ASCII percent-encoded as UTF-8, as the URL parser does. */
const percentEncode = (s: string) => s.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
const encodeQueryPart = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
const decodeQueryPart = (s: string) => {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
};

export class URLSearchParams {
  #list: [string, string][] = [];
  #onChange?: () => void;
  constructor(init?: string | Record<string, string> | Iterable<[string, string]> | URLSearchParams) {
    if (typeof init === 'string') this.#parse(init);
    else if (init && typeof (init as any)[Symbol.iterator] === 'function')
      for (const [k, v] of init as Iterable<[string, string]>) this.#list.push([String(k), String(v)]);
    else if (init) for (const k of Object.keys(init)) this.#list.push([k, String((init as any)[k])]);
  }
  #parse(query: string) {
    this.#list = [];
    for (const part of query.replace(/^\?/, '').split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      this.#list.push(
        eq < 0
          ? [decodeQueryPart(part), '']
          : [decodeQueryPart(part.slice(0, eq)), decodeQueryPart(part.slice(eq + 1))],
      );
    }
  }
  /** @internal URL keeps its search in step with its params. */
  _bind(query: string, onChange: () => void) {
    this.#parse(query);
    this.#onChange = onChange;
  }
  get size() {
    return this.#list.length;
  }
  append(k: string, v: string) {
    this.#list.push([String(k), String(v)]);
    this.#onChange?.();
  }
  delete(k: string) {
    this.#list = this.#list.filter(([n]) => n !== k);
    this.#onChange?.();
  }
  get(k: string) {
    return this.#list.find(([n]) => n === k)?.[1] ?? null;
  }
  getAll(k: string) {
    return this.#list.filter(([n]) => n === k).map(([, v]) => v);
  }
  has(k: string) {
    return this.#list.some(([n]) => n === k);
  }
  set(k: string, v: string) {
    const i = this.#list.findIndex(([n]) => n === k);
    if (i < 0) this.#list.push([String(k), String(v)]);
    else {
      this.#list[i] = [String(k), String(v)];
      this.#list = this.#list.filter(([n], j) => n !== k || j === i);
    }
    this.#onChange?.();
  }
  sort() {
    this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#onChange?.();
  }
  forEach(fn: (v: string, k: string, p: URLSearchParams) => void) {
    for (const [k, v] of this.#list) fn(v, k, this);
  }
  keys() {
    return this.#list.map(([k]) => k)[Symbol.iterator]();
  }
  values() {
    return this.#list.map(([, v]) => v)[Symbol.iterator]();
  }
  entries() {
    return this.#list.map(([k, v]) => [k, v] as [string, string])[Symbol.iterator]();
  }
  [Symbol.iterator]() {
    return this.entries();
  }
  toString() {
    return this.#list.map(([k, v]) => `${encodeQueryPart(k)}=${encodeQueryPart(v)}`).join('&');
  }
}

export class URL {
  protocol = '';
  username = '';
  password = '';
  hostname = '';
  port = '';
  pathname = '/';
  hash = '';
  #search = '';
  readonly searchParams = new URLSearchParams();

  static canParse(url: string, base?: string | URL) {
    try {
      new URL(url, base);
      return true;
    } catch {
      return false;
    }
  }

  constructor(input: string | URL, base?: string | URL) {
    const text = String(input).trim();
    let m = ABSOLUTE.exec(text);
    if (!m) {
      if (base === undefined) throw new TypeError(`Invalid URL: ${text}`);
      const b = new URL(base);
      m = ABSOLUTE.exec(resolve(text, b))!;
    }
    this.protocol = m[1].toLowerCase();
    const authority = m[3] ?? '';
    const at = authority.lastIndexOf('@');
    if (at >= 0) {
      const [user, pass = ''] = authority.slice(0, at).split(':');
      this.username = user;
      this.password = pass;
    }
    const hostPort = authority.slice(at + 1);
    const portAt = hostPort.startsWith('[') ? hostPort.indexOf(']:') + 1 : hostPort.lastIndexOf(':');
    this.hostname = (portAt > 0 ? hostPort.slice(0, portAt) : hostPort).toLowerCase();
    const port = portAt > 0 ? hostPort.slice(portAt + 1) : '';
    if (port && !/^\d+$/.test(port)) throw new TypeError(`Invalid URL: ${text}`);
    this.port = port === DEFAULT_PORTS[this.protocol] ? '' : port;
    if (m[2] === undefined && !m[4]) throw new TypeError(`Invalid URL: ${text}`);
    this.pathname = m[2] !== undefined ? percentEncode(normalisePath(m[4] || '/')) : m[4];
    this.#search = m[5] && m[5] !== '?' ? percentEncode(m[5]) : '';
    this.hash = m[6] && m[6] !== '#' ? percentEncode(m[6]) : '';
    this.searchParams._bind(this.#search, () => {
      const s = this.searchParams.toString();
      this.#search = s ? `?${s}` : '';
    });
  }
  get search() {
    return this.#search;
  }
  set search(value: string) {
    const s = String(value);
    this.#search = s && s !== '?' ? (s.startsWith('?') ? s : `?${s}`) : '';
    this.searchParams._bind(this.#search, () => {
      const q = this.searchParams.toString();
      this.#search = q ? `?${q}` : '';
    });
  }
  get host() {
    return this.port ? `${this.hostname}:${this.port}` : this.hostname;
  }
  get origin() {
    return this.hostname ? `${this.protocol}//${this.host}` : 'null';
  }
  get href() {
    const auth = this.username ? `${this.username}${this.password ? `:${this.password}` : ''}@` : '';
    const slashes = this.hostname || this.protocol === 'file:' ? '//' : '';
    return `${this.protocol}${slashes}${auth}${this.host}${this.pathname}${this.#search}${this.hash}`;
  }
  toString() {
    return this.href;
  }
  toJSON() {
    return this.href;
  }
}

/** A relative reference resolved against a base (RFC 3986 §5.2, the common cases). */
function resolve(ref: string, base: URL): string {
  const root = `${base.protocol}//${base.username ? `${base.username}@` : ''}${base.host}`;
  if (ref.startsWith('//')) return `${base.protocol}${ref}`;
  if (ref.startsWith('/')) return root + ref;
  if (ref.startsWith('?')) return root + base.pathname + ref;
  if (ref.startsWith('#')) return root + base.pathname + base.search + ref;
  if (ref === '') return root + base.pathname + base.search;
  const dir = base.pathname.slice(0, base.pathname.lastIndexOf('/') + 1);
  return root + dir + ref;
}
