/**
 * The node's one HTTP server and what goes where: `/fn/NAME/…` to the gateway (a protocol switch
 * there to the function's app, gateway/upgrade.ts), `/async/fn/NAME/…` to the async endpoint,
 * everything else to the control-plane API. While draining, the data plane answers 503.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { NimbusError } from '../core/errors.js';
import { answerClientError } from './client-error.js';
import { splitFunctionUrl } from './function-url.js';
import type { Gateway } from './gateway.js';
import { sendPlatformError } from './platform-error.js';
import { serveWithoutUpgrade } from './upgrade.js';

export interface FrontDoorOptions {
  gateway: Gateway;
  handleAsync(req: IncomingMessage, res: ServerResponse, name: string, path: string, tag?: string): Promise<void>;
  api: RequestListener;
  draining(): boolean;
}

export function createFrontDoor({ gateway, handleAsync, api, draining }: FrontDoorOptions): Server {
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const isAsync = url.startsWith('/async/fn/');
    if (!url.startsWith('/fn/') && !isAsync) return void api(req, res);
    if (draining())
      return sendPlatformError(res, new NimbusError('NIMBUS_ERR_SHUTTING_DOWN', 'Nimbus is shutting down'));
    if (isAsync) {
      const { name, path, tag } = splitFunctionUrl(url.slice('/async'.length));
      return void handleAsync(req, res, name, path, tag);
    }
    const { name, path, tag } = splitFunctionUrl(url);
    void gateway.handle(req, res, name, path, tag);
  };
  const server = createServer(listener);
  // A protocol switch (WebSocket) on /fn/ goes to the function's app; anywhere else the Upgrade
  // header is ignored and the request served as a plain one (e.g. curl --http2's h2c offer).
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '/';
    if (!url.startsWith('/fn/') || draining()) return serveWithoutUpgrade(req, socket, head, listener);
    const { name, path, tag } = splitFunctionUrl(url);
    void gateway.upgrade(req, socket, head, name, path, tag);
  });
  server.on('clientError', answerClientError);
  return server;
}
