import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCodes, PLATFORM_ERROR_HEADER } from '../core/errors.js';

type ParserError = Error & { code?: string; reason?: string };

/**
 * node:http's 'clientError' handler: a request it could not parse (or that was too slow) gets the
 * platform's JSON error with `x-nimbus-error`, not node's bare status line. There is no request or
 * response object here, so the answer is written to the socket, which then closes.
 */
export function answerClientError(err: ParserError, socket: Duplex): void {
  // Nothing to answer on a connection the client already closed or reset.
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const code =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'NIMBUS_ERR_HEADERS_TOO_LARGE'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'NIMBUS_ERR_REQUEST_TIMEOUT'
        : 'NIMBUS_ERR_INVALID_REQUEST';
  const status = ErrorCodes[code].status;
  const message =
    code === 'NIMBUS_ERR_INVALID_REQUEST'
      ? `Malformed HTTP request: ${err.reason ?? err.message}`
      : code === 'NIMBUS_ERR_HEADERS_TOO_LARGE'
        ? 'The request head is larger than 16 KB'
        : 'The request was not sent in time';
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n${PLATFORM_ERROR_HEADER}: ${code}\r\nconnection: close\r\n\r\n${body}`,
  );
}
