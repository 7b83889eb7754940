export { FunctionsService } from './functions-service.js';
export type { DeployInput, DeployResult, FunctionDetails, ServiceHooks } from './functions-service.js';
export { openApiDocument } from './openapi.js';
export { createApi } from './routes.js';
export type { ApiOptions } from './routes.js';
