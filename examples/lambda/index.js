// An AWS Lambda-style handler: Nimbus turns the HTTP request into an API Gateway-like event and
// the returned { statusCode, headers, body } into the response.
// Try it: `nimbus invoke lambda-hello --data '{"name":"Ada"}'`.
export const handler = async (event, context) => {
  let input = {};
  try {
    input = event.body
      ? JSON.parse(event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString() : event.body)
      : {};
  } catch {
    return { statusCode: 400, headers: { 'content-type': 'application/json' }, body: '{"error":"body must be JSON"}' };
  }
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      message: `Hello, ${input.name ?? 'world'}, from a Lambda-style function on Nimbus!`,
      method: event.httpMethod ?? event.requestContext?.http?.method,
      path: event.path ?? event.rawPath,
      requestId: context?.awsRequestId,
    }),
  };
};
