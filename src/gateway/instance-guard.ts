/**
 * Keeps function instances off the control plane. The node serves the data plane (/fn/, /async/fn/)
 * and the control plane (/api/v1, /metrics, the dashboard) on one port without authentication,
 * trusting whoever can reach it; but process instances with `network: egress` share the host's
 * network namespace, so they reach it too. Requests from them to the control plane get 403
 * NIMBUS_ERR_FORBIDDEN; the data plane stays open (functions call each other through it).
 *
 * How an instance is told apart: sandboxed instances run as their own uid (nobody when Nimbus is
 * root, sandbox.ts), and the kernel records the owner of every socket. For a connection from
 * this host, the peer's socket is the row of /proc/net/tcp (tcp6) whose local end is our remote
 * end; its uid says who made it. It needs no knowledge of the instances (warm cells, CRIU
 * restores, snapshot builds are all covered). Walking the instances' cgroups for pids and their
 * /proc/PID/fd socket inodes was the alternative, but an inode says nothing of the connection's
 * addresses without this same table (sock_diag netlink would, and Node cannot open it).
 *
 * Cost, measured on the busy 2-core VM: reading the table walks the kernel's whole connection hash
 * (262144 buckets), ≈ 2.5-5 ms whatever the number of connections; read in 4 KB steps up to the
 * row sought, ≈ 3 ms. A new control-plane connection was answered ≈ 4-5 ms later than without the
 * guard (p50, 5-6 ms against 1 ms); requests on a connection already judged, and /fn/, pay nothing. So it is done once per
 * connection (the verdict is kept on the socket), only for control-plane requests (never on the
 * data path), off the event loop (libuv's thread pool), with one read shared by every connection
 * waiting, and at most READ_BURST reads at once then `readsPerSecond`: a flood of new connections
 * (say, from an instance) costs at most ≈ 40 walks a second, a fraction of one core.
 *
 * A row gone or no longer held by any process (closed while its request was in flight; TIME_WAIT
 * rows show uid 0) cannot be attributed: a local peer then counts as an instance (fail closed), a
 * peer of another host as a client.
 *
 * When instances run as the node's own uid (Nimbus not root, or no bubblewrap) they cannot be
 * told apart: the guard is off and the node warns once at start (docs/sandbox.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { NimbusError } from '../core/errors.js';
import { sendPlatformError } from './platform-error.js';
import { type Endpoint, findSocketOwner, type ProcTable, readTable, tableOf } from './proc-net-tcp.js';

export interface InstanceGuardOptions {
  /** The runtime: its `instanceUid` (the process runtime's, process-runtime.ts) when it has one. */
  runtime?: unknown;
  /** The uid instances run as on the host (sandboxed, Nimbus root); default the runtime's, else unknown. */
  instanceUid?: number;
  /** The node's own uid. Default process.getuid(). */
  selfUid?: number;
  /** Print UNGUARDED_WARNING (once per process) when the guard cannot work. */
  warn?: boolean;
  /** Reads a socket table, up to where `enough` says (tests). Default: the file itself (proc-net-tcp.ts). */
  readTable?: (file: ProcTable, enough: (text: string) => boolean) => Promise<string>;
  /** Table reads per second past a burst of `READ_BURST` (a flood of new connections is held to it). Default 40. */
  readsPerSecond?: number;
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

export interface InstanceGuard {
  /** False when instances share the node's uid: nothing to tell them apart by. */
  readonly effective: boolean;
  /** Whether the connection comes from a function instance (judged once per connection). */
  fromInstance(socket: Socket): boolean | Promise<boolean>;
  /** `listener` behind the guard: instances get 403 NIMBUS_ERR_FORBIDDEN, except on /healthz. */
  wrap(listener: Listener): Listener;
}

/** The warning printed at start when the guard cannot work. */
export const UNGUARDED_WARNING =
  'function instances run as the node’s own user (Nimbus is not root, or instances are not sandboxed): ' +
  'any instance with `network: egress` can call the control-plane API on 127.0.0.1 (docs/sandbox.md)';

let warned = false;

/** Table reads allowed back to back before `readsPerSecond` applies. */
const READ_BURST = 10;

/** The `instanceUid` a runtime reports (the process runtime does, process-runtime.ts), if any. */
function instanceUidOf(runtime: unknown): number | undefined {
  const uid = (runtime as { instanceUid?: unknown } | undefined)?.instanceUid;
  return typeof uid === 'number' ? uid : undefined;
}

export function createInstanceGuard(options: InstanceGuardOptions): InstanceGuard {
  const selfUid = options.selfUid ?? process.getuid?.();
  const instanceUid = options.instanceUid ?? instanceUidOf(options.runtime);
  const effective = instanceUid !== undefined && instanceUid !== selfUid;
  if (!effective && options.warn && !warned) {
    warned = true;
    console.warn(`nimbus: WARNING: ${UNGUARDED_WARNING}`);
  }
  const read = options.readTable ?? readTable;
  const readsPerSecond = options.readsPerSecond ?? 40;
  const verdicts = new WeakMap<Socket, boolean | Promise<boolean>>();
  // Connections waiting for a table read that starts after they arrived (an earlier one may miss them).
  let waiting: { socket: Socket; resolve(verdict: boolean): void }[] = [];
  let reading = false;
  // A token bucket of reads: READ_BURST at once, then readsPerSecond.
  let tokens = READ_BURST;
  let refilled = performance.now();
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;

  /** A socket already closed has no addresses (nothing to serve it anyway: judged an instance). */
  const closed = (s: Socket) => !s.remoteAddress || !s.remotePort || !s.localAddress || !s.localPort;

  function judge(socket: Socket, tables: Map<ProcTable, string>): boolean {
    if (closed(socket)) return true;
    for (const { file, peer, self } of rowsOf(socket)) {
      const owner = findSocketOwner(tables.get(file) ?? '', peer, self);
      if (owner) return owner.inode === 0 || owner.uid === instanceUid;
    }
    return isLocalAddress(socket.remoteAddress!, socket.localAddress!);
  }

  /**
   * One table read for every connection waiting (those arrived in the same turn of the event loop
   * share it), never two at once, and no more than the bucket allows.
   */
  function pump(): void {
    if (reading || timer || waiting.length === 0) return;
    const now = performance.now();
    tokens = Math.min(READ_BURST, tokens + ((now - refilled) * readsPerSecond) / 1000);
    refilled = now;
    const go = () => {
      timer = undefined;
      tokens -= 1;
      readForWaiting();
    };
    // setImmediate, not a 0 ms timeout (Node makes that 1 ms): the connections of this turn still join.
    timer = tokens >= 1 ? setImmediate(go) : setTimeout(go, ((1 - tokens) * 1000) / readsPerSecond);
  }

  function readForWaiting(): void {
    reading = true;
    const batch = waiting;
    waiting = [];
    const rows = new Map<ProcTable, Row[]>();
    for (const w of batch)
      for (const row of closed(w.socket) ? [] : rowsOf(w.socket))
        rows.set(row.file, [...(rows.get(row.file) ?? []), row]);
    const tables = new Map<ProcTable, string>();
    const reads = [...rows].map(async ([file, sought]) => {
      const enough = (text: string) => sought.every((r) => findSocketOwner(text, r.peer, r.self) !== undefined);
      tables.set(file, await read(file, enough));
    });
    void Promise.all(reads)
      .then(() => {
        for (const w of batch) w.resolve(judge(w.socket, tables));
      })
      .catch(() => {
        for (const w of batch) w.resolve(true);
      })
      .finally(() => {
        reading = false;
        pump();
      });
  }

  const guard: InstanceGuard = {
    effective,
    fromInstance(socket) {
      if (!effective) return false;
      let verdict = verdicts.get(socket);
      if (verdict === undefined) {
        const judged = new Promise<boolean>((resolve) => waiting.push({ socket, resolve }));
        verdict = judged.then((v) => {
          verdicts.set(socket, v);
          return v;
        });
        verdicts.set(socket, verdict);
        pump();
      }
      return verdict;
    },
    wrap(listener) {
      if (!effective) return listener;
      const refuse = (res: ServerResponse) =>
        sendPlatformError(
          res,
          new NimbusError(
            'NIMBUS_ERR_FORBIDDEN',
            'The control-plane API does not accept requests from function instances; call other functions through /fn/NAME/',
          ),
        );
      return (req, res) => {
        if (req.url === '/healthz') return listener(req, res);
        const verdict = guard.fromInstance(req.socket);
        if (verdict === false) return listener(req, res);
        if (verdict === true) return refuse(res);
        void verdict.then((fromInstance) => (fromInstance ? refuse(res) : listener(req, res)));
      };
    },
  };
  return guard;
}
/** Where the peer's socket may be listed: the row whose local end is our remote end. */
interface Row {
  file: ProcTable;
  peer: Endpoint;
  self: Endpoint;
}

/**
 * The rows that may list the peer of `socket`. On a dual-stack listener an IPv4 client shows as
 * `::ffff:a.b.c.d`, but its own socket is listed in /proc/net/tcp if it is an IPv4 one, in tcp6
 * (mapped) if it is a dual-stack IPv6 one: both are looked at.
 */
function rowsOf(socket: Socket): Row[] {
  const peer = { address: socket.remoteAddress!, port: socket.remotePort! };
  const self = { address: socket.localAddress!, port: socket.localPort! };
  const rows: Row[] = [{ file: tableOf(peer.address), peer, self }];
  const v4 = (e: Endpoint) => ({ address: e.address.slice('::ffff:'.length), port: e.port });
  if (peer.address.startsWith('::ffff:') && self.address.startsWith('::ffff:'))
    rows.push({ file: '/proc/net/tcp', peer: v4(peer), self: v4(self) });
  return rows;
}

/** A loopback address, or one of this host's own: a peer that can only be on this host. */
export function isLocalAddress(address: string, ownAddress: string): boolean {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (plain.startsWith('127.') || plain === '::1' || plain === ownAddress) return true;
  for (const list of Object.values(networkInterfaces()))
    for (const i of list ?? []) if (i.address === plain || i.address === address) return true;
  return false;
}
