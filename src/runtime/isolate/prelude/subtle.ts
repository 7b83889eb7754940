/**
 * `crypto.subtle`, `CryptoKey` and `DOMException` for the isolate. Every operation is done by the
 * node's WebCrypto (host-crypto.ts): the isolate holds a CryptoKey as an id into its own table on
 * the host, and a handle that is garbage-collected here frees its slot there.
 */

/** WebCrypto's legacy DOMException codes, by name (0 for names without one). */
const CODES: Record<string, number> = {
  IndexSizeError: 1,
  NotFoundError: 8,
  NotSupportedError: 9,
  InvalidStateError: 11,
  SyntaxError: 12,
  InvalidAccessError: 15,
  TypeMismatchError: 17,
  SecurityError: 18,
  NetworkError: 19,
  AbortError: 20,
  QuotaExceededError: 22,
  TimeoutError: 23,
  DataCloneError: 25,
};

export class DOMException extends Error {
  readonly code: number;
  constructor(message = '', name = 'Error') {
    super(String(message));
    Object.defineProperty(this, 'name', { value: String(name), configurable: true, writable: true });
    this.code = CODES[this.name] ?? 0;
  }
}

/** An ivm.Reference to the host's subtle (host-crypto.ts), as seen inside the isolate. */
type Answer = [true, unknown] | [false, string, string, boolean];
type HostRef = { apply(self: undefined, args: unknown[], options: object): Promise<Answer> };

let host: { call: HostRef; free(id: number): void; later(fn: () => void): void } | undefined;
/** The host id behind each CryptoKey handle (not a property: nothing a function can rewrite). */
const ids = new WeakMap<object, number>();
const released = new FinalizationRegistry<number>((id) => host?.free(id));
const INTERNAL = Symbol('CryptoKey');

export class CryptoKey {
  readonly type!: string;
  readonly extractable!: boolean;
  readonly algorithm!: Record<string, unknown>;
  readonly usages!: string[];
  constructor(
    token?: unknown,
    d?: { id: number; type: string; extractable: boolean; algorithm: object; usages: string[] },
  ) {
    if (token !== INTERNAL || !d) throw new TypeError('Illegal constructor');
    Object.defineProperties(this, {
      type: { value: d.type, enumerable: true },
      extractable: { value: d.extractable, enumerable: true },
      algorithm: { value: Object.freeze(d.algorithm), enumerable: true },
      usages: { value: Object.freeze(d.usages), enumerable: true },
    });
    ids.set(this, d.id);
    released.register(this, d.id);
  }
  get [Symbol.toStringTag]() {
    return 'CryptoKey';
  }
}

/** Binds the host's subtle (a Reference), its free callback, and a timer (`later`) for the GC wait. */
export function bindSubtle(call: HostRef, free: (id: number) => void, later: (fn: () => void) => void) {
  host = { call, free, later };
}

/**
 * A full garbage collection, so that dropped CryptoKeys are finalized and their host slots freed.
 * V8 frees them only in a full collection, which a function that allocates little may never
 * reach; isolated-vm runs one (LowMemoryNotification) before it refuses an ArrayBuffer over the
 * isolate's limit, so a refused 1 TiB allocation (over any `memory`, which is at most 10 GiB) is
 * the way to ask for it. The finalizers then run as a task: wait one timer turn.
 */
async function collect(): Promise<void> {
  try {
    new ArrayBuffer(2 ** 40);
  } catch {
    // expected: refused after the collection
  }
  await new Promise<void>((resolve) => host?.later(resolve));
}

/** A view's own bytes (structured clone of a view would copy its whole buffer). */
function own(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
  return value;
}

function keyId(key: unknown, op: string, nth: string): number {
  const id = typeof key === 'object' && key !== null ? ids.get(key) : undefined;
  if (id === undefined)
    throw new TypeError(`Failed to execute '${op}' on 'SubtleCrypto': ${nth} argument is not of type CryptoKey.`);
  return id;
}

/** An algorithm as data: a name string stays, an object's members are copied, its `public` key becomes its id. */
function alg(value: unknown, op: string): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'public') out[k] = keyId(v, op, '1st');
    else if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer))
      out[k] = { ...v }; // hash: { name }
    else out[k] = own(v);
  }
  return out;
}

function wrap(d: any): unknown {
  if (d && typeof d === 'object' && typeof d.id === 'number') return new CryptoKey(INTERNAL, d);
  if (d && typeof d === 'object' && d.publicKey && d.privateKey)
    return { publicKey: wrap(d.publicKey), privateKey: wrap(d.privateKey) };
  return d;
}

async function ask(op: string, args: unknown[]): Promise<Answer> {
  try {
    return await host!.call.apply(undefined, [op, args], {
      arguments: { copy: true },
      result: { promise: true, copy: true },
    });
  } catch (e) {
    // Only a value that cannot be copied out (a function, a symbol…) fails here.
    throw new TypeError(`Failed to execute '${op}' on 'SubtleCrypto': ${e instanceof Error ? e.message : e}`);
  }
}

async function call(op: string, raw: unknown[], hasKey = false): Promise<any> {
  if (!host) throw new DOMException('crypto.subtle is not available', 'NotSupportedError');
  const args = raw.map(own);
  let answer = await ask(op, args);
  if (!answer[0] && answer[3]) {
    // The isolate's key table is full: free what is garbage, then try once more.
    await collect();
    answer = await ask(op, args);
  }
  if (!answer[0]) {
    const [, name, message] = answer;
    throw name === 'TypeError' ? new TypeError(message) : new DOMException(message, name);
  }
  return hasKey ? wrap(answer[1]) : answer[1];
}

export class SubtleCrypto {
  constructor(token?: unknown) {
    if (token !== INTERNAL) throw new TypeError('Illegal constructor');
  }
  async digest(algorithm: unknown, data: unknown): Promise<ArrayBuffer> {
    return call('digest', [alg(algorithm, 'digest'), data]);
  }
  async importKey(format: unknown, keyData: unknown, algorithm: unknown, extractable: unknown, usages: unknown) {
    return call('importKey', [format, keyData, alg(algorithm, 'importKey'), extractable, usages], true);
  }
  async exportKey(format: unknown, key: unknown) {
    return call('exportKey', [format, keyId(key, 'exportKey', '2nd')]);
  }
  async generateKey(algorithm: unknown, extractable: unknown, usages: unknown) {
    return call('generateKey', [alg(algorithm, 'generateKey'), extractable, usages], true);
  }
  async sign(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    return call('sign', [alg(algorithm, 'sign'), keyId(key, 'sign', '2nd'), data]);
  }
  async verify(algorithm: unknown, key: unknown, signature: unknown, data: unknown): Promise<boolean> {
    return call('verify', [alg(algorithm, 'verify'), keyId(key, 'verify', '2nd'), signature, data]);
  }
  async encrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    return call('encrypt', [alg(algorithm, 'encrypt'), keyId(key, 'encrypt', '2nd'), data]);
  }
  async decrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
    return call('decrypt', [alg(algorithm, 'decrypt'), keyId(key, 'decrypt', '2nd'), data]);
  }
  async deriveBits(algorithm: unknown, key: unknown, length: unknown): Promise<ArrayBuffer> {
    return call('deriveBits', [alg(algorithm, 'deriveBits'), keyId(key, 'deriveBits', '2nd'), length]);
  }
  async deriveKey(algorithm: unknown, key: unknown, derived: unknown, extractable: unknown, usages: unknown) {
    const args = [alg(algorithm, 'deriveKey'), keyId(key, 'deriveKey', '2nd'), alg(derived, 'deriveKey')];
    return call('deriveKey', [...args, extractable, usages], true);
  }
  async wrapKey(): Promise<never> {
    throw new DOMException('wrapKey is not available in isolates', 'NotSupportedError');
  }
  async unwrapKey(): Promise<never> {
    throw new DOMException('unwrapKey is not available in isolates', 'NotSupportedError');
  }
}

export const subtle = new SubtleCrypto(INTERNAL);
