/**
 * Who owns the other end of a TCP connection made on this host: the row of /proc/net/tcp (or tcp6)
 * whose local address is the connection's remote one. Linux prints each address as hex 32-bit
 * words in the host's byte order (127.0.0.1:8080 is `0100007F:1F90` on little-endian machines),
 * a port as 4 hex digits, and per row the state, the owner's uid and the socket's inode.
 */
import { open } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { endianness } from 'node:os';

/** One end of a TCP connection. */
export interface Endpoint {
  address: string;
  port: number;
}

/** What the kernel says about a socket. */
export interface SocketOwner {
  uid: number;
  /** 0 when no process holds the socket any more (closed while data was in flight, or TIME_WAIT). */
  inode: number;
  /** TCP state, e.g. 1 ESTABLISHED, 6 TIME_WAIT. */
  state: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** One 32-bit word as /proc prints it: the 4 bytes read as a native integer, in hex. */
function word(bytes: number[]): string {
  const ordered = LITTLE_ENDIAN ? [...bytes].reverse() : bytes;
  return ordered
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

/** 16 bytes of an IPv6 address (`::` expanded, an embedded IPv4 tail as its 4 bytes). */
function ipv6Bytes(address: string): number[] {
  let text = address.toLowerCase().split('%')[0]!;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (isIPv4(text.slice(lastColon + 1))) {
    tail.push(
      ...text
        .slice(lastColon + 1)
        .split('.')
        .map(Number),
    );
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '') : []);
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const bytes = all.flatMap((g) => {
    const n = Number.parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/**
 * `address:port` as /proc/net/tcp{,6} prints it. IPv4 goes in /proc/net/tcp; IPv6, including
 * IPv4-mapped ones (`::ffff:127.0.0.1`, what a dual-stack listener sees), in /proc/net/tcp6.
 */
export function procEndpoint({ address, port }: Endpoint): string {
  const bytes = isIPv4(address) ? address.split('.').map(Number) : ipv6Bytes(address);
  let hex = '';
  for (let i = 0; i < bytes.length; i += 4) hex += word(bytes.slice(i, i + 4));
  return `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The owner of the socket at `local` connected to `remote`, from the text of /proc/net/tcp or
 * tcp6; undefined when no such row. Searches the text for the row's two addresses rather than
 * parsing every row: a busy host has thousands.
 */
export function findSocketOwner(table: string, local: Endpoint, remote: Endpoint): SocketOwner | undefined {
  const needle = ` ${procEndpoint(local)} ${procEndpoint(remote)} `;
  const at = table.indexOf(needle);
  if (at < 0) return undefined;
  const end = table.indexOf('\n', at);
  // A row not read to its end yet (readTable stops early) may have its uid cut short.
  if (end < 0) return undefined;
  // Columns after the addresses: st tx:rx tr:when retrnsmt uid timeout inode …
  const cols = table
    .slice(at + needle.length, end)
    .trim()
    .split(/\s+/);
  const [state, , , , uid, , inode] = cols;
  if (inode === undefined) return undefined;
  return { state: Number.parseInt(state!, 16), uid: Number(uid), inode: Number(inode) };
}

/** The table that lists sockets of `address`'s family: IPv4 in tcp, IPv6 (IPv4-mapped too) in tcp6. */
export function tableOf(address: string): ProcTable {
  return isIPv4(address) ? '/proc/net/tcp' : '/proc/net/tcp6';
}

export type ProcTable = '/proc/net/tcp' | '/proc/net/tcp6';

/** Bytes per read of a table: the kernel walks on only as far as each read needs. */
const CHUNK = 4 * 1024;

/**
 * This network namespace's table, '' when unreadable; read up to where `enough` says the text
 * suffices. A read is costly whatever the table's length: the kernel walks its established-
 * connections hash (≈ 2.5-5 ms for all 262144 buckets on the 2-core CI VM), and the final read
 * that finds the end walks again. Small reads stopped once the rows sought are in cut that to
 * ≈ 3 ms (measured in proc-net-tcp.test.ts). Callers read asynchronously and share one read.
 */
export async function readTable(file: ProcTable, enough: (text: string) => boolean = () => false): Promise<string> {
  let text = '';
  try {
    const handle = await open(file, 'r');
    try {
      const buffer = Buffer.alloc(CHUNK);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        text += buffer.toString('latin1', 0, bytesRead);
        if (enough(text)) break;
      }
    } finally {
      await handle.close();
    }
  } catch {
    return text;
  }
  return text;
}
