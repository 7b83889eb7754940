import { errorResponse, nameParam } from './openapi-parts.js';

/** OpenAPI paths of instances, usage, triggers and the metrics endpoint (routes.ts, trigger-routes.ts). */
const json = (description: string) => ({ description, content: { 'application/json': {} } });

const triggerBody = {
  type: 'object',
  required: ['type', 'function'],
  properties: {
    id: { type: 'string', description: 'Default: FUNCTION-TYPE-N' },
    type: { type: 'string', enum: ['cron', 'interval', 'nats', 'rabbitmq', 'mqtt', 'redis-streams'] },
    function: { type: 'string' },
    config: { type: 'object', description: "The source's settings (docs/triggers.md)" },
  },
  additionalProperties: false,
};

export const morePaths = {
  '/api/v1/functions/{name}/instances': {
    parameters: [nameParam],
    get: {
      summary: 'Live instances (state, CPU, memory, requests, start mode) and recently ended ones with why',
      responses: { 200: json('{function, instances, ended, sandbox?}'), 404: errorResponse('Unknown function') },
    },
  },
  '/api/v1/usage': {
    get: {
      summary: 'Usage per function and hour: invocations, GB-seconds, cold starts, egress bytes',
      parameters: [
        { name: 'function', in: 'query', schema: { type: 'string' } },
        { name: 'since', in: 'query', description: 'ISO time or a duration such as 24h', schema: { type: 'string' } },
        { name: 'format', in: 'query', schema: { type: 'string', enum: ['json', 'csv'] } },
      ],
      responses: {
        200: {
          description: '{usage: [rows]} or CSV',
          content: { 'application/json': {}, 'text/csv': {} },
        },
        400: errorResponse('Bad since or format'),
      },
    },
  },
  '/api/v1/triggers': {
    get: {
      summary: 'Every trigger with its origin (api or manifest) and health',
      responses: { 200: json('{triggers}') },
    },
    post: {
      summary: 'Add a trigger (cron, interval, NATS / JetStream, RabbitMQ, MQTT, Redis Streams)',
      requestBody: { required: true, content: { 'application/json': { schema: triggerBody } } },
      responses: {
        201: json('The trigger, started'),
        400: errorResponse('Invalid trigger (field path in the message)'),
        404: errorResponse('Unknown function'),
      },
    },
  },
  '/api/v1/triggers/{id}': {
    parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
    get: {
      summary: 'One trigger and its status',
      responses: { 200: json('The trigger'), 404: errorResponse('Unknown trigger') },
    },
    delete: {
      summary: 'Stop and delete a trigger (an MQTT session is ended too)',
      responses: { 200: json('{deleted}'), 404: errorResponse('Unknown trigger') },
    },
  },
  '/api/v1/openapi.json': { get: { summary: 'This document', responses: { 200: json('OpenAPI 3.1') } } },
  '/metrics': {
    get: {
      summary: 'Prometheus metrics (docs/observability.md)',
      responses: { 200: { description: 'Text exposition format', content: { 'text/plain': {} } } },
    },
  },
};
