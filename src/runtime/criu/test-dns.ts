/**
 * A tiny authoritative DNS server for tests (UDP, A records only): the names it knows answer their
 * address, every other name NXDOMAIN, so no lookup a test makes ever goes further.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface TestDns {
  /** Every name asked, in order (lower case, no trailing dot). */
  readonly asked: string[];
  close(): Promise<void>;
}

/** Reads the question's name (labels from offset 12); undefined for a malformed query. */
function questionName(msg: Buffer): { name: string; end: number } | undefined {
  const labels: string[] = [];
  let i = 12;
  while (i < msg.length) {
    const len = msg[i]!;
    if (len === 0) return { name: labels.join('.').toLowerCase(), end: i + 1 };
    if (len > 63) return undefined;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  return undefined;
}

/** The answer to one query (pure). */
export function dnsAnswer(query: Buffer, records: Record<string, string>): Buffer | undefined {
  if (query.length < 17 || query.readUInt16BE(4) !== 1) return undefined;
  const q = questionName(query);
  if (!q || q.end + 4 > query.length) return undefined;
  const type = query.readUInt16BE(q.end);
  const question = query.subarray(12, q.end + 4);
  const address = records[q.name];
  const answers =
    address && type === 1
      ? [Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...address.split('.').map(Number)])]
      : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // Response, authoritative, recursion desired/available; NXDOMAIN for an unknown name.
  header.writeUInt16BE(0x8580 | (address ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, question, ...answers]);
}

/** Serves `records` on UDP `host`:53. */
export function startTestDns(host: string, records: Record<string, string>): Promise<TestDns> {
  const socket: Socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (msg, from) => {
    const name = questionName(msg)?.name;
    if (name !== undefined) asked.push(name);
    const answer = dnsAnswer(msg, records);
    if (answer) socket.send(answer, from.port, from.address);
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(53, host, () => {
      socket.off('error', reject);
      resolve({ asked, close: () => new Promise((r) => socket.close(() => r())) });
    });
  });
}
