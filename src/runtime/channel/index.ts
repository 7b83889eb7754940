/**
 * Lazy web objects for the instance channel: the gateway hands providers a Request and gets a
 * Response back (the portable contract), and where both ends are ours the bytes move with Node
 * streams underneath. See BENCHMARKS.md for what it saves.
 */
export type { LazyRequestParts } from '../guest/lazy-request.js';
export { createLazyRequest, takeLazyRequestParts } from '../guest/lazy-request.js';
export type { LazyResponseParts, RawHeaders } from './lazy-response.js';
export { createLazyResponse, takeLazyResponseParts } from './lazy-response.js';
export type { BodyControl, BodySink } from './pushed-body.js';
export { PushedBody } from './pushed-body.js';
export type { RequestHead } from './request-head.js';
export { requestHead } from './request-head.js';
