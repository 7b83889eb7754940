/** Pieces every OpenAPI path description uses (openapi.ts, openapi-traffic.ts). */
export const error = { $ref: '#/components/schemas/Error' };
export const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: error } },
});
export const nameParam = {
  name: 'name',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,62}$' },
};
