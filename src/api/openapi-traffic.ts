import { errorResponse, nameParam } from './openapi-parts.js';

/** The OpenAPI paths and schemas of revisions, traffic and rollouts (traffic-routes.ts; docs/traffic.md). */
const ok = (schema: string, description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
});

export const trafficPaths = {
  '/api/v1/functions/{name}/revisions': {
    parameters: [nameParam],
    get: {
      summary: 'Revisions, newest first, with their share of the traffic and tags',
      responses: {
        200: { description: '{function, revisions: [RevisionView]}' },
        404: errorResponse('Unknown function'),
      },
    },
  },
  '/api/v1/functions/{name}/revisions/{id}': {
    parameters: [
      nameParam,
      { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^r[1-9][0-9]*$' } },
    ],
    get: {
      summary: 'One revision',
      responses: { 200: ok('RevisionView', 'The revision'), 404: errorResponse('Unknown function or revision') },
    },
  },
  '/api/v1/functions/{name}/traffic': {
    parameters: [nameParam],
    get: { summary: 'Who gets the traffic', responses: { 200: ok('TrafficView', 'Spec and effective split') } },
    put: {
      summary: 'Replace the traffic spec atomically; stops a running rollout',
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['traffic'],
              properties: { traffic: { type: 'array', items: { $ref: '#/components/schemas/TrafficTarget' } } },
            },
          },
        },
      },
      responses: {
        200: ok('TrafficView', 'Routing follows the new spec'),
        400: errorResponse('Invalid spec (sum, revision, percent, tag)'),
        404: errorResponse('Unknown function'),
      },
    },
  },
  '/api/v1/functions/{name}/rollback': {
    parameters: [nameParam],
    post: {
      summary: 'All traffic to a revision (default: the previous one), pinned; during a canary, abort it',
      requestBody: {
        content: { 'application/json': { schema: { type: 'object', properties: { revision: { type: 'string' } } } } },
      },
      responses: {
        200: ok('TrafficView', 'TrafficView plus from and to'),
        400: errorResponse('No earlier revision'),
        404: errorResponse('Unknown function or revision'),
      },
    },
  },
  '/api/v1/functions/{name}/rollout': {
    parameters: [nameParam],
    get: {
      summary: "The function's latest canary rollout, with every step and decision",
      responses: { 200: ok('RolloutRecord', 'The rollout'), 404: errorResponse('No rollout') },
    },
    delete: {
      summary: 'Abort the running rollout and restore the traffic from before it',
      responses: { 200: ok('RolloutRecord', 'Aborted'), 404: errorResponse('No running rollout') },
    },
  },
};

const windowStats = {
  type: 'object',
  properties: {
    requests: { type: 'integer' },
    errors: { type: 'integer' },
    errorRate: { type: 'number', description: 'percent' },
    p95Ms: { type: 'number' },
  },
};

export const trafficSchemas = {
  TrafficTarget: {
    type: 'object',
    required: ['percent'],
    properties: {
      revision: { type: 'string' },
      latest: { const: true },
      percent: { type: 'integer', minimum: 0, maximum: 100 },
      tag: { type: 'string', pattern: '^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$' },
    },
  },
  TrafficView: {
    type: 'object',
    properties: {
      function: { type: 'string' },
      latestRevision: { type: 'string' },
      latestReady: { type: 'string' },
      traffic: { type: 'array', items: { $ref: '#/components/schemas/TrafficTarget' } },
      effective: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            revision: { type: 'string' },
            percent: { type: 'integer' },
            tags: { type: 'array', items: { type: 'string' } },
          },
        },
      },
      rollout: { type: 'object' },
    },
  },
  RevisionView: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      number: { type: 'integer' },
      digest: { type: 'string' },
      identity: { type: 'string' },
      createdAt: { type: 'string' },
      percent: { type: 'integer' },
      tags: { type: 'array', items: { type: 'string' } },
      latest: { type: 'boolean' },
      latestReady: { type: 'boolean' },
      config: { type: 'object' },
    },
  },
  RolloutRecord: {
    type: 'object',
    properties: {
      function: { type: 'string' },
      canary: { type: 'string' },
      stable: { type: 'array', items: { type: 'string' } },
      settings: { type: 'object' },
      status: { enum: ['running', 'promoted', 'rolled-back', 'aborted'] },
      step: { type: 'integer' },
      percent: { type: 'integer' },
      original: { type: 'array', items: { $ref: '#/components/schemas/TrafficTarget' } },
      previousLatest: { type: 'string' },
      startedAt: { type: 'string' },
      updatedAt: { type: 'string' },
      stepStartedAt: { type: 'string' },
      finishedAt: { type: 'string' },
      events: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            time: { type: 'string' },
            action: { enum: ['start', 'step', 'wait', 'promote', 'rollback', 'abort', 'resume'] },
            percent: { type: 'integer' },
            reason: { type: 'string' },
            canary: windowStats,
            stable: windowStats,
          },
        },
      },
    },
  },
};
