/** The events folder's public surface: durable async invocation over the Queue contract. */
export { CALLBACK_HEADER, createAsyncEndpoint } from './async-endpoint.js';
export {
  type AsyncInvocationsNode,
  type AsyncInvocationsOptions,
  createAsyncInvocations,
  DELIVERY_QUEUE,
  validateConfig,
} from './async-invocations.js';
export { type NatsPublish, parseDestination } from './destinations.js';
export { createInvoker, type InvocationRequest, type InvocationResponse, type Invoker } from './invoker.js';
export { createQueueDemand, type QueueDemand } from './queue-demand.js';
export type {
  AsyncConfig,
  AsyncDefaults,
  AsyncInvocations,
  Destination,
  EnqueueOptions,
  InvocationView,
} from './types.js';
export { DEFAULT_ASYNC } from './types.js';
