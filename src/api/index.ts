export type { DeployInput, DeployResult, FunctionDetails, ServiceHooks } from './functions-service.js';
export { FunctionsService } from './functions-service.js';
export { openApiDocument } from './openapi.js';
export type { ApiOptions } from './routes.js';
export { createApi } from './routes.js';
