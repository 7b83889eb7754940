import { morePaths } from './openapi-more.js';
import { errorResponse, nameParam } from './openapi-parts.js';
import { trafficPaths, trafficSchemas } from './openapi-traffic.js';

/** The OpenAPI 3.1 description of the control-plane API, served at /api/v1/openapi.json. */

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Nimbus API',
    version: '1',
    description: 'Control plane of Nimbus. Functions themselves are served under /fn/NAME/.',
  },
  paths: {
    ...trafficPaths,
    ...morePaths,
    '/healthz': {
      get: { summary: 'Liveness', responses: { 200: { description: 'Serving' }, 503: { description: 'Draining' } } },
    },
    '/api/v1/functions': {
      get: {
        summary: 'List functions',
        responses: {
          200: {
            description: 'Functions',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: { functions: { type: 'array', items: { $ref: '#/components/schemas/FunctionSummary' } } },
                },
              },
            },
          },
        },
      },
      post: {
        summary: 'Deploy a source directory (gzip-compressed tar); makes a new revision unless nothing changed',
        parameters: [
          { name: 'config', in: 'query', description: 'JSON object of manifest overrides', schema: { type: 'string' } },
          {
            name: 'name',
            in: 'query',
            description: 'Name used when neither config nor manifest names the function',
            schema: { type: 'string' },
          },
          {
            name: 'canary',
            in: 'query',
            description: 'true: release as an automated canary; false: at once; unset: as the manifest says',
            schema: { type: 'boolean' },
          },
        ],
        requestBody: {
          required: true,
          content: { 'application/gzip': { schema: { type: 'string', format: 'binary' } } },
        },
        responses: {
          200: {
            description: 'Identical source and config: no new revision',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/DeployResult' } } },
          },
          201: {
            description: 'New revision',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/DeployResult' } } },
          },
          400: errorResponse('Bad archive, manifest, name or source'),
          413: errorResponse('Upload too large'),
        },
      },
    },
    '/api/v1/functions/{name}': {
      parameters: [nameParam],
      get: {
        summary: 'Describe a function: config, revisions, instances',
        responses: { 200: { description: 'Details' }, 404: errorResponse('Unknown function') },
      },
      delete: {
        summary: 'Delete a function and stop its instances',
        responses: { 200: { description: 'Deleted' }, 404: errorResponse('Unknown function') },
      },
    },
    '/api/v1/functions/{name}/scale': {
      parameters: [nameParam],
      get: {
        summary: "The autoscaler's view per live revision: desired/ready instances, panic, observed load, queue",
        responses: {
          200: { description: '{function, revisions: [ScaleView]}' },
          404: errorResponse('Unknown function'),
        },
      },
    },
    '/async/fn/{name}/{path}': {
      parameters: [nameParam, { name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
      post: {
        summary: 'Queue an invocation (any method is accepted and kept); runs later with retries',
        parameters: [
          {
            name: 'x-nimbus-callback-url',
            in: 'header',
            description: 'Webhook POSTed the invocation record when it ends',
            schema: { type: 'string' },
          },
        ],
        responses: {
          202: { description: 'Queued: {id, status, statusUrl}' },
          404: errorResponse('Unknown function'),
          413: errorResponse('Body too large'),
        },
      },
    },
    '/api/v1/invocations/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      get: {
        summary: 'An async invocation: status, attempts, times, result',
        responses: { 200: { description: 'InvocationView' }, 404: errorResponse('Unknown or pruned') },
      },
    },
    '/api/v1/functions/{name}/invocations': {
      parameters: [
        nameParam,
        { name: 'state', in: 'query', schema: { enum: ['queued', 'running', 'succeeded', 'failed', 'dead'] } },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10000, default: 100 } },
      ],
      get: {
        summary: 'Async invocations of a function with counts per state',
        responses: { 200: { description: 'List' } },
      },
    },
    '/api/v1/functions/{name}/dlq': {
      parameters: [nameParam],
      get: { summary: 'Dead-lettered invocations', responses: { 200: { description: 'List' } } },
    },
    '/api/v1/functions/{name}/dlq/redrive': {
      parameters: [nameParam],
      post: {
        summary: 'Queue dead letters again: body {ids} or empty for all',
        responses: { 200: { description: '{redriven}' }, 404: errorResponse('None of the ids is dead-lettered') },
      },
    },
    '/api/v1/functions/{name}/async-config': {
      parameters: [nameParam],
      get: { summary: 'Async settings and destinations', responses: { 200: { description: 'Config' } } },
      put: {
        summary: 'Set maxRetries, maxEventAge, concurrency, destinations {onSuccess, onFailure}',
        responses: { 200: { description: 'Config' }, 400: errorResponse('Bad field') },
      },
    },
    '/api/v1/functions/{name}/logs': {
      parameters: [
        nameParam,
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        { name: 'since', in: 'query', description: 'ISO time or epoch ms', schema: { type: 'string' } },
        { name: 'requestId', in: 'query', schema: { type: 'string' } },
        { name: 'until', in: 'query', description: 'ISO time or epoch ms (exclusive)', schema: { type: 'string' } },
        {
          name: 'status',
          in: 'query',
          description: 'Requests with this status (5xx, 404, 400-499): their request records and lines',
          schema: { type: 'string' },
        },
        { name: 'kind', in: 'query', schema: { type: 'string', enum: ['request', 'lines'] } },
        { name: 'follow', in: 'query', description: 'true: stream as server-sent events', schema: { type: 'boolean' } },
      ],
      get: {
        summary: 'Function logs and one request record per invocation',
        responses: {
          200: { description: 'JSON {logs}, or text/event-stream with follow=true' },
          404: errorResponse('Unknown function'),
        },
      },
    },
  },
  components: {
    schemas: {
      ...trafficSchemas,
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } },
          },
        },
      },
      DeployResult: {
        type: 'object',
        properties: {
          function: { type: 'string' },
          revision: { type: 'string' },
          created: { type: 'boolean' },
          digest: { type: 'string' },
          url: { type: 'string' },
          snapshot: { $ref: '#/components/schemas/RevisionSnapshot' },
          checkpoint: { $ref: '#/components/schemas/RevisionCheckpoint' },
          percent: { type: 'integer', description: "The new revision's share of the traffic now" },
          rollout: { $ref: '#/components/schemas/RolloutRecord' },
        },
      },
      RevisionCheckpoint: {
        type: 'object',
        description:
          'App mode with `snapshot`: whether cold starts are CRIU restores on this node, and why not (docs/criu.md)',
        properties: {
          restores: { type: 'boolean' },
          state: { enum: ['ready', 'pending', 'failed', 'unsupported'] },
          reason: { type: 'string' },
          image: {
            type: 'object',
            properties: { bytes: { type: 'integer' }, dumpMs: { type: 'integer' }, createdAt: { type: 'string' } },
          },
          restored: { type: 'integer' },
        },
      },
      RevisionSnapshot: {
        type: 'object',
        description:
          'V8 startup snapshot of a node revision (docs/snapshots.md): built at deploy (`snapshot: true`), or in the background after a slow init (`auto`, with `auto`), or why there is none',
        properties: {
          status: { enum: ['ready', 'failed', 'skipped', 'building'] },
          auto: {
            type: 'object',
            description: '`snapshot: auto`: the init a cold start measured and the node threshold it was compared with',
            properties: { initMs: { type: 'integer' }, thresholdMs: { type: 'integer' } },
          },
          digest: { type: 'string' },
          blob: { type: 'string' },
          node: { type: 'string' },
          guest: { type: 'string' },
          bytes: { type: 'integer' },
          buildMs: { type: 'integer' },
          error: { type: 'string' },
        },
      },
      FunctionSummary: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          latestRevision: { type: 'string' },
          traffic: {
            type: 'array',
            description: 'Who gets the traffic now (docs/traffic.md)',
            items: { type: 'object', properties: { revision: { type: 'string' }, percent: { type: 'integer' } } },
          },
          revisionCount: { type: 'integer' },
          runtime: { enum: ['node', 'app', 'isolate'] },
          url: { type: 'string' },
          createdAt: { type: 'string' },
          updatedAt: { type: 'string' },
          instances: {
            type: 'object',
            properties: {
              ready: { type: 'integer', description: 'Warm instances: serving, idle, or frozen while idle' },
              starting: { type: 'integer' },
              busy: { type: 'integer', description: 'Those of the ready instances with requests in flight' },
            },
          },
        },
      },
    },
  },
} as const;
