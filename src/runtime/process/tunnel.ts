import { connect, type Socket } from 'node:net';
import { NimbusError } from '../../core/errors.js';

/**
 * A fresh connection to the guest's Unix socket, speaking plain HTTP/1.1 (the guest serves it
 * beside the framed protocol): the carrier of one request that switches protocols (WebSocket).
 * Its own connection, because after a 101 the bytes are the app's and no longer frames.
 */
export function openTunnel(socketPath: string, instanceId: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const failed = (err: Error) =>
      reject(
        new NimbusError('NIMBUS_ERR_INSTANCE_CRASHED', `Instance ${instanceId} refused a connection: ${err.message}`),
      );
    socket.once('error', failed);
    socket.once('connect', () => {
      socket.off('error', failed);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
