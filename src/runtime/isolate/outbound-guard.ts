/**
 * Where an isolate's `fetch` may go. Isolates fetch host-side, from the node's own process (and
 * user, often root), so without a rule a function could reach the node's control-plane API on
 * loopback, or anything else listening only on the host (docs/isolate.md, "Outbound fetch").
 *
 * The rule: every connection is made to an address resolved and checked here (DNS rebinding
 * cannot swap the address between the check and the connect, and redirects pass the same check
 * since every hop connects through this dispatcher). Loopback, unspecified (0.0.0.0, ::) and
 * link-local (169.254.0.0/16 — cloud metadata services — and fe80::/10) addresses are refused.
 * The one exception is the node's own data plane: `/fn/…` and `/async/fn/…` on the node's URL,
 * so functions can call each other through the gateway as process instances do.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';

/** What the guard needs from the node; both optional (a bare runtime refuses all of loopback). */
export interface OutboundGuardOptions {
  /** The node's own URL (e.g. http://127.0.0.1:8080) once it listens: its data plane stays reachable. */
  dataPlane?: () => string | undefined;
  /** Lets a refused address through anyway (tests that fetch a server of their own on 127.0.0.1). */
  allow?: (address: string, port: number) => boolean;
}

export interface OutboundGuard {
  /** Pass as undici fetch's `dispatcher`. */
  dispatcher: Dispatcher;
  /** Ends its connections, in-flight fetches included (the isolates are gone by then). */
  close(): Promise<void>;
}

/** A fetch refused by the rule above; its message is what the isolate's fetch rejects with. */
export class OutboundRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundRefused';
  }
}

const REFUSED = new BlockList();
REFUSED.addSubnet('0.0.0.0', 8, 'ipv4');
REFUSED.addSubnet('127.0.0.0', 8, 'ipv4');
REFUSED.addSubnet('169.254.0.0', 16, 'ipv4');
REFUSED.addAddress('::', 'ipv6');
REFUSED.addAddress('::1', 'ipv6');
REFUSED.addSubnet('fe80::', 10, 'ipv6');

/** Why `address` is off limits to isolates, or undefined when it is not (IPv4-mapped IPv6 included). */
export function refusedBecause(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0 || !REFUSED.check(address, family === 4 ? 'ipv4' : 'ipv6')) return undefined;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (v4.startsWith('169.254.') || /^fe[89ab]/i.test(address)) return `${address} is a link-local address`;
  return `${address} is a local address of the node`;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
const ANY_ADDRESS = new Set(['0.0.0.0', '[::]']);

/**
 * Whether `origin` is the node (`node`, its URL): the same origin, or on the same port a loopback
 * name for a node that listens on loopback or on every address (`localhost:8080` for
 * `127.0.0.1:8080`). Another host's name is never the node, even if it resolves to it.
 */
function isNodeItself(origin: URL, node: URL): boolean {
  if (origin.protocol !== node.protocol || origin.port !== node.port) return false;
  if (origin.hostname === node.hostname) return true;
  return LOOPBACK_NAMES.has(origin.hostname) && (LOOPBACK_NAMES.has(node.hostname) || ANY_ADDRESS.has(node.hostname));
}

/** `/fn/NAME/…` or `/async/fn/NAME/…`: the paths the gateway serves to functions. */
function isDataPlanePath(path: string): boolean {
  return path.startsWith('/fn/') || path.startsWith('/async/fn/');
}

/**
 * The dispatcher an isolate's fetch goes through: requests to the node's own data plane on a
 * direct agent, every other one on an agent whose connector resolves, checks, then connects to
 * the checked address. The origin and path are judged per request (keep-alive connections to the
 * node are never shared with other paths: those go through the checking agent and are refused).
 */
export function createOutboundGuard(options: OutboundGuardOptions = {}): OutboundGuard {
  const plain = buildConnector({});
  const checked = new Agent({
    connect(opts, callback) {
      const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
      resolveAllowed(opts.hostname, port, options.allow).then(
        (address) => plain({ ...opts, hostname: address }, callback),
        (err: Error) => callback(err, null),
      );
    },
  });
  const own = new Agent();
  const dispatcher = checked.compose((dispatch) => (opts, handler) => {
    const url = options.dataPlane?.();
    if (url && opts.origin !== undefined && isDataPlanePath(opts.path)) {
      const node = new URL(url);
      // To the address the node listens on, whichever local name the function used for it.
      if (isNodeItself(new URL(String(opts.origin)), node))
        return own.dispatch({ ...opts, origin: node.origin }, handler);
    }
    return dispatch(opts, handler);
  });
  return { dispatcher, close: async () => void (await Promise.all([checked.destroy(), own.destroy()])) };
}

/** The first address of `hostname` the rule allows; rejects OutboundRefused when none is. */
async function resolveAllowed(hostname: string, port: number, allow: OutboundGuardOptions['allow']): Promise<string> {
  const addresses = isIP(hostname) ? [hostname] : (await lookup(hostname, { all: true })).map((a) => a.address);
  let why: string | undefined;
  for (const address of addresses) {
    const refused = refusedBecause(address);
    if (!refused || allow?.(address, port)) return address;
    why ??= refused;
  }
  throw new OutboundRefused(
    `fetch: ${hostname} is off limits to isolates (${why}); on the node's own host only its data plane, /fn/ and /async/fn/ on the node's URL, is reachable`,
  );
}
