/**
 * The host side of the isolate's `crypto.subtle`: each call is run by the node's own WebCrypto
 * (so algorithms, validation and error names are WebCrypto's), and CryptoKeys stay here, in a
 * per-isolate table; the isolate holds only an id. Caps keep a hostile function from exhausting
 * the node (memory for keys and queued data, the libuv threadpool for long jobs).
 */
import { createHash, webcrypto } from 'node:crypto';
import ivm from 'isolated-vm';

type Key = webcrypto.CryptoKey;
/** Node 20 has CryptoKey as a global only (not on `webcrypto`). */
const NodeCryptoKey = (globalThis as unknown as { CryptoKey: abstract new () => Key }).CryptoKey;

/** Per-isolate bounds on crypto.subtle (documented in docs/isolate.md). */
export const CRYPTO_LIMITS = {
  /** Live CryptoKeys held for one isolate (a key is freed when the isolate drops its last handle). */
  keys: 1000,
  /**
   * Key material passed to importKey (raw / spki / pkcs8 bytes, or a JWK's JSON), and an HMAC
   * key's length: with the key cap, ≤ 16 MiB of key material per isolate held outside its heap
   * (an 8192-bit RSA private key is ≈ 6.5 KB as a JWK).
   */
  keyBytes: 16 * 1024,
  /** Data in one call (digest / sign / verify / encrypt / decrypt input plus parameters). */
  dataBytes: 32 * 1024 * 1024,
  /** Calls queued or running for one isolate, and the bytes they hold. */
  pending: 64,
  pendingBytes: 64 * 1024 * 1024,
  /** Calls of one isolate running at once on the node's threadpool (the rest wait their turn). */
  running: 2,
  /** RSA modulus, bits: generated keys / imported keys. */
  rsaGenerateBits: 4096,
  rsaImportBits: 8192,
  /** PBKDF2 iterations, and bits one deriveBits may ask for. */
  pbkdf2Iterations: 1_000_000,
  deriveBits: 64 * 1024 * 8,
};

/** What the isolate may ask for; the position of the key argument of each. */
const OPS: Record<string, number | undefined> = {
  digest: undefined,
  importKey: undefined,
  generateKey: undefined,
  exportKey: 1,
  sign: 1,
  verify: 1,
  encrypt: 1,
  decrypt: 1,
  deriveBits: 1,
  deriveKey: 1,
};

/** Algorithm members passed on; anything else a function puts in an algorithm stays behind. */
const MEMBERS = [
  'name',
  'hash',
  'length',
  'namedCurve',
  'modulusLength',
  'publicExponent',
  'saltLength',
  'iv',
  'counter',
  'additionalData',
  'tagLength',
  'label',
  'salt',
  'info',
  'iterations',
  'public',
];

/** An error that crosses to the isolate as [false, name, message, retry]. */
class Refusal extends Error {
  /** The key table is full: the isolate may collect its garbage (freeing keys) and retry once. */
  retry = false;
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

function size(value: unknown): number {
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  return 0;
}

export interface CryptoBridge {
  /** ivm.Reference: (op, args) → [true, result] | [false, errorName, message, retry]. */
  subtle: ivm.Reference;
  /** ivm.Callback: (id) the isolate dropped one handle of key `id`. */
  free: ivm.Callback;
  close(): void;
}

export function createCryptoBridge(limits = CRYPTO_LIMITS): CryptoBridge {
  /** Keys by id, with how many isolate-side handles point at each and the import fingerprint. */
  const keys = new Map<number, { key: Key; refs: number; print?: string }>();
  /** Imports of the same key material reuse one entry: a handler importing its secret per request holds one key. */
  const prints = new Map<string, number>();
  let nextId = 0;
  let closed = false;
  let pending = 0;
  let pendingBytes = 0;
  let running = 0;
  const waiting: (() => void)[] = [];

  function keyOf(id: unknown, op: string, position: number): Key {
    const entry = typeof id === 'number' ? keys.get(id) : undefined;
    if (!entry) {
      const nth = ['1st', '2nd', '3rd'][position - 1] ?? `${position}th`;
      throw new Refusal(
        'TypeError',
        `Failed to execute '${op}' on 'SubtleCrypto': ${nth} argument is not of type CryptoKey.`,
      );
    }
    return entry.key;
  }

  /** A clean copy of an algorithm (string or known members), its `public` key resolved. */
  function algorithm(raw: unknown, op: string): { alg: unknown; bytes: number } {
    if (typeof raw !== 'object' || raw === null) return { alg: raw, bytes: 0 };
    const alg: Record<string, unknown> = {};
    let bytes = 0;
    for (const member of MEMBERS) {
      if (!(member in raw)) continue;
      const value = (raw as Record<string, unknown>)[member];
      alg[member] = member === 'public' ? keyOf(value, op, 1) : value;
      bytes += size(value);
    }
    const name = String(alg.name ?? '').toUpperCase();
    if (name.startsWith('RSA') && op === 'generateKey' && Number(alg.modulusLength) > limits.rsaGenerateBits)
      throw new Refusal(
        'NotSupportedError',
        `RSA keys generated in an isolate are at most ${limits.rsaGenerateBits} bits`,
      );
    if (name === 'PBKDF2' && Number(alg.iterations) > limits.pbkdf2Iterations)
      throw new Refusal(
        'NotSupportedError',
        `PBKDF2 in an isolate allows at most ${limits.pbkdf2Iterations} iterations`,
      );
    if (name === 'HMAC' && Number(alg.length) > limits.keyBytes * 8)
      throw new Refusal('NotSupportedError', `HMAC keys in an isolate are at most ${limits.keyBytes * 8} bits`);
    return { alg, bytes };
  }

  const tooManyKeys = () => {
    const refusal = new Refusal(
      'QuotaExceededError',
      `crypto.subtle: more than ${limits.keys} live CryptoKeys in this isolate (a key is freed once nothing references it)`,
    );
    refusal.retry = true;
    return refusal;
  };

  /** Registers a key, or counts one more handle of an identical import. */
  function describe(key: Key, print?: string) {
    if (print !== undefined) {
      const same = prints.get(print);
      const entry = same === undefined ? undefined : keys.get(same);
      if (same !== undefined && entry) {
        entry.refs++;
        return { id: same, type: key.type, extractable: key.extractable, algorithm: key.algorithm, usages: key.usages };
      }
    }
    if (
      key.type !== 'secret' &&
      Number((key.algorithm as { modulusLength?: number }).modulusLength) > limits.rsaImportBits
    )
      throw new Refusal('NotSupportedError', `RSA keys in an isolate are at most ${limits.rsaImportBits} bits`);
    if (keys.size >= limits.keys) throw tooManyKeys();
    const id = ++nextId;
    keys.set(id, { key, refs: 1, print });
    if (print !== undefined) prints.set(print, id);
    return { id, type: key.type, extractable: key.extractable, algorithm: key.algorithm, usages: key.usages };
  }

  /** A fingerprint of an import: format, material, algorithm, extractability and usages. */
  function fingerprint(args: unknown[]): string {
    const [format, data, alg, extractable, usages] = args;
    const hash = createHash('sha256');
    hash.update(JSON.stringify([format, alg, extractable, Array.isArray(usages) ? [...usages].sort() : usages]));
    if (ArrayBuffer.isView(data)) hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    else if (data instanceof ArrayBuffer) hash.update(new Uint8Array(data));
    else hash.update(JSON.stringify(data ?? null));
    return hash.digest('hex');
  }

  async function run(op: string, args: unknown[]): Promise<unknown> {
    const subtle = webcrypto.subtle as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const call = [...args];
    const at = OPS[op];
    if (at !== undefined) call[at] = keyOf(args[at], op, at + 1);
    // The algorithm is the first argument of every op but importKey / exportKey (third / none).
    const algAt = op === 'importKey' ? 2 : op === 'exportKey' ? -1 : 0;
    let bytes = 0;
    if (algAt >= 0) {
      const clean = algorithm(args[algAt], op);
      call[algAt] = clean.alg;
      bytes += clean.bytes;
    }
    if (op === 'deriveKey') call[2] = algorithm(args[2], 'importKey').alg;
    if (op === 'deriveBits' && Number(args[2]) > limits.deriveBits)
      throw new Refusal('NotSupportedError', `deriveBits in an isolate returns at most ${limits.deriveBits} bits`);
    if (op === 'importKey') {
      const material = size(args[1]) || JSON.stringify(args[1] ?? null).length;
      if (material > limits.keyBytes)
        throw new Refusal('QuotaExceededError', `importKey: key data over ${limits.keyBytes} bytes`);
    }
    for (const value of args) bytes += size(value);
    if (bytes > limits.dataBytes)
      throw new Refusal('QuotaExceededError', `crypto.subtle.${op}: more than ${limits.dataBytes} bytes in one call`);
    if (pending >= limits.pending || pendingBytes + bytes > limits.pendingBytes)
      throw new Refusal(
        'QuotaExceededError',
        `crypto.subtle: more than ${limits.pending} calls or ${limits.pendingBytes} bytes pending in this isolate`,
      );
    pending++;
    pendingBytes += bytes;
    try {
      if (running >= limits.running) await new Promise<void>((resolve) => waiting.push(resolve));
      running++;
      try {
        if (closed) throw new Refusal('InvalidStateError', 'The isolate has ended');
        const result = await subtle[op].apply(webcrypto.subtle, call);
        if (closed) return undefined;
        const print = op === 'importKey' ? fingerprint(call) : undefined;
        if (result instanceof NodeCryptoKey) return describe(result, print);
        if (result && typeof result === 'object' && 'privateKey' in result) {
          const pair = result as webcrypto.CryptoKeyPair;
          if (keys.size + 2 > limits.keys) throw tooManyKeys();
          return { publicKey: describe(pair.publicKey), privateKey: describe(pair.privateKey) };
        }
        return result;
      } finally {
        running--;
        waiting.shift()?.();
      }
    } finally {
      pending--;
      pendingBytes -= bytes;
    }
  }

  const subtle = new ivm.Reference(async (op: unknown, args: unknown): Promise<unknown> => {
    try {
      if (closed) throw new Refusal('InvalidStateError', 'The isolate has ended');
      if (typeof op !== 'string' || !Object.hasOwn(OPS, op) || !Array.isArray(args))
        throw new Refusal('NotSupportedError', `crypto.subtle: ${String(op)} is not supported in isolates`);
      return new ivm.ExternalCopy([true, await run(op, args)]).copyInto();
    } catch (err) {
      const e = err as Error;
      // Node's WebCrypto throws TypeErrors (bad arguments) and DOMExceptions (by name).
      const name = e instanceof TypeError ? 'TypeError' : typeof e?.name === 'string' ? e.name : 'OperationError';
      const retry = err instanceof Refusal && err.retry;
      return new ivm.ExternalCopy([false, name, String(e?.message ?? e), retry]).copyInto();
    }
  });

  const free = new ivm.Callback(
    (id: unknown) => {
      const entry = typeof id === 'number' ? keys.get(id) : undefined;
      if (!entry || --entry.refs > 0) return;
      keys.delete(id as number);
      if (entry.print !== undefined) prints.delete(entry.print);
    },
    { ignored: true },
  );

  return {
    subtle,
    free,
    close() {
      closed = true;
      keys.clear();
      prints.clear();
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}
