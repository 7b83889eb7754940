import type { ServerResponse } from 'node:http';
import { type NimbusError, PLATFORM_ERROR_HEADER } from '../core/errors.js';

/** Answers with a platform-made error: JSON body, catalogue status, and the `x-nimbus-error` tag. */
export function sendPlatformError(res: ServerResponse, error: NimbusError): void {
  const body = JSON.stringify(error.toJSON());
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    [PLATFORM_ERROR_HEADER]: error.code,
  };
  if (error.status === 503) headers['retry-after'] = 1;
  res.writeHead(error.status, headers);
  res.end(body);
}
