export { answerClientError } from './client-error.js';
export { createFrontDoor } from './front-door.js';
export { splitFunctionUrl } from './function-url.js';
export type { Gateway, GatewayOptions, GatewayTracer, InvocationRecord, RequestTrace } from './gateway.js';
export { createGateway } from './gateway.js';
export { sendPlatformError } from './platform-error.js';
export type { Resolver, StoreResolver } from './resolver.js';
export { createStoreResolver, planFor } from './resolver.js';
export { serveWithoutUpgrade } from './upgrade.js';
