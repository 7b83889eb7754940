/** Headers for the isolate: case-insensitive, insertion-ordered, with repeated set-cookie kept apart. */

export type HeadersInit = Headers | [string, string][] | Record<string, string>;

export class Headers {
  #list: [string, string][] = [];
  constructor(init?: HeadersInit) {
    if (init instanceof Headers) for (const [k, v] of init.#list) this.#list.push([k, v]);
    else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
    else if (init && typeof (init as any)[Symbol.iterator] === 'function')
      for (const [k, v] of init as any) this.append(k, v);
    else if (init) for (const k of Object.keys(init)) this.append(k, (init as Record<string, string>)[k]);
  }
  append(name: string, value: string) {
    const k = String(name).toLowerCase();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(k)) throw new TypeError(`Invalid header name: ${name}`);
    const v = String(value).trim();
    if (/[\0\r\n]/.test(v)) throw new TypeError(`Invalid header value for ${name}: it contains NUL, CR or LF`);
    this.#list.push([k, v]);
  }
  delete(name: string) {
    const k = String(name).toLowerCase();
    this.#list = this.#list.filter(([n]) => n !== k);
  }
  get(name: string): string | null {
    const k = String(name).toLowerCase();
    const values = this.#list.filter(([n]) => n === k).map(([, v]) => v);
    return values.length ? values.join(', ') : null;
  }
  getSetCookie(): string[] {
    return this.#list.filter(([n]) => n === 'set-cookie').map(([, v]) => v);
  }
  has(name: string) {
    const k = String(name).toLowerCase();
    return this.#list.some(([n]) => n === k);
  }
  set(name: string, value: string) {
    this.delete(name);
    this.append(name, value);
  }
  forEach(fn: (value: string, name: string, headers: Headers) => void) {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
  /** Sorted and combined, as the spec iterates (set-cookie stays one entry per cookie). */
  *entries(): IterableIterator<[string, string]> {
    const names = [...new Set(this.#list.map(([n]) => n))].sort();
    for (const n of names) {
      if (n === 'set-cookie') for (const c of this.getSetCookie()) yield [n, c];
      else yield [n, this.get(n)!];
    }
  }
  *keys() {
    for (const [k] of this.entries()) yield k;
  }
  *values() {
    for (const [, v] of this.entries()) yield v;
  }
  [Symbol.iterator]() {
    return this.entries();
  }
  /**
   * @internal From the host's flat `[name, value, …]`: names lowercase and values checked already
   * (node:http or undici parsed them), so no per-header validation.
   */
  static _fromFlat(flat: string[]): Headers {
    const headers = new Headers();
    for (let i = 0; i < flat.length; i += 2) headers.#list.push([flat[i], flat[i + 1]]);
    return headers;
  }
  /** @internal Name/value pairs as stored, for the host boundary. */
  _flat(): string[] {
    return this.#list.flat();
  }
}
