import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { createInstanceGuard } from './instance-guard.js';
import { type ProcTable, procEndpoint } from './proc-net-tcp.js';

const NODE = { address: '127.0.0.1', port: 8080 };

/** A connection to the node from `address`:`port`, as the server side sees it. */
const socket = (address: string, port = 45678) =>
  ({ remoteAddress: address, remotePort: port, localAddress: NODE.address, localPort: NODE.port }) as Socket;

/** A /proc/net/tcp text with one row: the peer at `port` owned by `uid`, its socket inode `inode`. */
const table = (port: number, uid: number, inode: number) =>
  `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n` +
  `   0: ${procEndpoint({ address: '127.0.0.1', port })} ${procEndpoint(NODE)} 01 00000000:00000000 00:00000000 00000000 ${uid} 0 ${inode} 1 0 20 4 30 10 -1\n`;

describe('instance guard', () => {
  const guardOver = (text: string, reads: ProcTable[] = []) =>
    createInstanceGuard({
      instanceUid: 65534,
      selfUid: 0,
      readTable: async (file) => {
        reads.push(file);
        return file === '/proc/net/tcp' ? text : '';
      },
    });

  it('refuses sockets owned by the instance uid, lets others through, and judges a connection once', async () => {
    const reads: ProcTable[] = [];
    const guard = guardOver(table(45678, 65534, 5), reads);
    const s = socket('127.0.0.1');
    assert.equal(await guard.fromInstance(s), true);
    assert.equal(guard.fromInstance(s), true, 'known at once the second time');
    assert.deepEqual(reads, ['/proc/net/tcp']);
    assert.equal(await guardOver(table(45678, 0, 5)).fromInstance(s), false, 'the node’s own uid (root)');
    assert.equal(await guardOver(table(45678, 1000, 5)).fromInstance(s), false, 'another user on the host');
  });

  it('fails closed for local peers it cannot attribute, open for other hosts', async () => {
    assert.equal(await guardOver(table(45678, 0, 0)).fromInstance(socket('127.0.0.1')), true, 'orphaned / TIME_WAIT');
    const empty = guardOver('');
    assert.equal(await empty.fromInstance(socket('127.0.0.1')), true, 'gone, on loopback');
    assert.equal(await empty.fromInstance(socket('::ffff:127.0.0.1')), true, 'gone, mapped loopback');
    assert.equal(await empty.fromInstance(socket('192.0.2.7')), false, 'another host');
  });

  it('shares one table read among the connections waiting, and spaces reads past the burst', async () => {
    const reads: number[] = [];
    const guard = createInstanceGuard({
      instanceUid: 65534,
      selfUid: 0,
      readsPerSecond: 1000 / 30,
      readTable: async () => {
        reads.push(performance.now());
        return `${table(1, 65534, 5)}${table(2, 0, 6).split('\n')[1]}\n`;
      },
    });
    const first = await Promise.all([
      guard.fromInstance(socket('127.0.0.1', 1)),
      guard.fromInstance(socket('127.0.0.1', 2)),
    ]);
    assert.deepEqual(first, [true, false]);
    assert.equal(reads.length, 1, 'connections of the same turn share a read');
    // Ten reads back to back (the burst), then one per 30 ms.
    for (let port = 3; port < 14; port++) assert.equal(await guard.fromInstance(socket('127.0.0.1', port)), true);
    assert.equal(reads.length, 12);
    const gap = reads[11]! - reads[10]!;
    assert.ok(gap >= 25, `the reads past the burst are ${gap} ms apart`);
    assert.ok(reads[9]! - reads[0]! < 25 * 9, 'the burst is not spaced');
  });

  it('is off, and passes everything, when instances share the node uid', () => {
    const guard = createInstanceGuard({ instanceUid: 0, selfUid: 0, readTable: async () => '' });
    assert.equal(guard.effective, false);
    assert.equal(guard.fromInstance(socket('127.0.0.1')), false);
    assert.equal(createInstanceGuard({ selfUid: 0 }).effective, false, 'no instance uid known');
    assert.equal(createInstanceGuard({ runtime: { instanceUid: 65534 }, selfUid: 0 }).effective, true);
  });
});
