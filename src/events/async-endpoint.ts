import type { IncomingMessage, ServerResponse } from 'node:http';
import { NimbusError, toNimbusError } from '../core/errors.js';
import { HOP_BY_HOP_HEADERS } from '../gateway/hop-by-hop.js';
import { sendPlatformError } from '../gateway/platform-error.js';
import type { AsyncInvocations } from './types.js';

export const CALLBACK_HEADER = 'x-nimbus-callback-url';

// This connection's headers are not part of the stored request (its length is the stored body's).
const HOP_BY_HOP = new Set([...HOP_BY_HOP_HEADERS, 'content-length']);

/**
 * `POST /async/fn/NAME[@TAG]/PATH`: stores method, path, headers and body durably and answers
 * `202 {"id", "status": "queued", "statusUrl"}` — or the platform error (404 unknown function or tag,
 * 413 body over the limit) without storing anything.
 */
export function createAsyncEndpoint(options: { invocations: AsyncInvocations; maxBodyBytes?: number }) {
  const maxBody = options.maxBodyBytes ?? 6 * 1024 * 1024;
  return async function handleAsync(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    path: string,
    tag?: string,
  ) {
    try {
      if (Number(req.headers['content-length'] ?? 0) > maxBody) {
        req.resume();
        throw tooLarge(maxBody);
      }
      const body = await readBody(req, maxBody);
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(req.headers)) {
        if (value === undefined || HOP_BY_HOP.has(key) || key.startsWith('x-nimbus-')) continue;
        headers[key] = Array.isArray(value) ? value.join(', ') : value;
      }
      headers['x-forwarded-host'] = req.headers.host ?? 'localhost';
      headers['x-forwarded-proto'] = 'http';
      if (req.socket.remoteAddress) headers['x-forwarded-for'] = req.socket.remoteAddress;
      const callback = req.headers[CALLBACK_HEADER];
      const view = await options.invocations.enqueue(
        name,
        { method: req.method ?? 'POST', path, headers, body },
        { callbackUrl: typeof callback === 'string' ? callback : undefined, ...(tag !== undefined ? { tag } : {}) },
      );
      const statusUrl = `http://${req.headers.host ?? 'localhost'}/api/v1/invocations/${view.id}`;
      const json = JSON.stringify({ id: view.id, status: view.status, statusUrl });
      res.writeHead(202, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(json),
        location: statusUrl,
        'x-nimbus-invocation-id': view.id,
      });
      res.end(json);
    } catch (err) {
      if (!res.headersSent) sendPlatformError(res, toNimbusError(err));
      else res.destroy();
    }
  };
}

/** The whole body, at most `max` bytes (events, not an async iterator: this runs per enqueue). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(max));
      } else chunks.push(chunk);
    });
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function tooLarge(max: number): NimbusError {
  return new NimbusError('NIMBUS_ERR_PAYLOAD_TOO_LARGE', `Request body is larger than the limit of ${max} bytes`);
}
