import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { describe, it } from 'node:test';
import { createInstanceGuard } from './instance-guard.js';
import { findSocketOwner, procEndpoint, readTable, tableOf } from './proc-net-tcp.js';

// Rows as Linux prints them (little-endian host): a client 127.0.0.1:45678 owned by uid 65534
// connected to a node on 127.0.0.1:8080, and the same from a dual-stack listener (IPv4-mapped).
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4754 1 0000000000000000 100 0 0 10 0
   1: 0100007F:B26E 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 65534        0 91234 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:B26E 01 00000000:00000000 00:00000000 00000000     0        0 91235 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:B26E 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 20 4 30 10 -1
   1: 00000000000000000000000001000000:C001 00000000000000000000000001000000:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
`;

describe('/proc/net/tcp', { skip: endianness() !== 'LE' && 'the sample rows are little-endian' }, () => {
  it('prints addresses as the kernel does', () => {
    assert.equal(procEndpoint({ address: '127.0.0.1', port: 8080 }), '0100007F:1F90');
    assert.equal(procEndpoint({ address: '10.1.2.3', port: 80 }), '0302010A:0050');
    assert.equal(procEndpoint({ address: '::1', port: 8080 }), '00000000000000000000000001000000:1F90');
    assert.equal(procEndpoint({ address: '::ffff:127.0.0.1', port: 45678 }), '0000000000000000FFFF00000100007F:B26E');
    assert.equal(procEndpoint({ address: 'fe80::1%eth0', port: 1 }), '000080FE000000000000000001000000:0001');
  });

  it('finds the owner of an IPv4 connection, not the listener nor the other end', () => {
    const client = { address: '127.0.0.1', port: 45678 };
    const node = { address: '127.0.0.1', port: 8080 };
    assert.deepEqual(findSocketOwner(TCP, client, node), { state: 1, uid: 65534, inode: 91234 });
    assert.deepEqual(findSocketOwner(TCP, node, client), { state: 1, uid: 0, inode: 91235 });
    assert.equal(findSocketOwner(TCP, { address: '127.0.0.1', port: 45679 }, node), undefined);
  });

  it('finds IPv4-mapped rows in tcp6, and TIME_WAIT rows with inode 0', () => {
    const node = { address: '::ffff:127.0.0.1', port: 8080 };
    assert.deepEqual(findSocketOwner(TCP6, { address: '::ffff:127.0.0.1', port: 45678 }, node), {
      state: 1,
      uid: 1000,
      inode: 777,
    });
    const closed = findSocketOwner(TCP6, { address: '::1', port: 0xc001 }, { address: '::1', port: 8080 });
    assert.deepEqual(closed, { state: 6, uid: 0, inode: 0 });
  });

  for (const listen of ['127.0.0.1', '::'])
    it(`finds the real owner of a live loopback connection (listening on ${listen})`, async (t) => {
      const server = createServer();
      server.listen(0, listen);
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const accepted = once(server, 'connection') as Promise<[Socket]>;
      const client = connect(port, '127.0.0.1');
      const [socket] = await accepted;
      t.after(() => {
        client.destroy();
        server.close();
      });
      if (listen === '127.0.0.1') {
        const peer = { address: socket.remoteAddress!, port: socket.remotePort! };
        const self = { address: socket.localAddress!, port: socket.localPort! };
        const owner = findSocketOwner(await readTable(tableOf(peer.address)), peer, self);
        assert.equal(owner?.uid, process.getuid!());
        assert.ok(owner.inode > 0);
        const rounds = 20;
        const start = process.hrtime.bigint();
        const enough = (text: string) => findSocketOwner(text, peer, self) !== undefined;
        for (let i = 0; i < rounds; i++) findSocketOwner(await readTable(tableOf(peer.address), enough), peer, self);
        t.diagnostic(`one lookup (read until found): ${Number(process.hrtime.bigint() - start) / rounds / 1000} µs`);
      }
      // The guard on the same socket: found, our uid is a client (a row not found would be refused:
      // a local peer it cannot attribute); as the instance uid, it is refused.
      assert.equal(await createInstanceGuard({ instanceUid: process.getuid!() + 1 }).fromInstance(socket), false);
      assert.equal(
        await createInstanceGuard({ instanceUid: process.getuid!(), selfUid: -1 }).fromInstance(socket),
        true,
      );
    });
});
