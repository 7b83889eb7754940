import { DEADLINE_HEADER, REQUEST_ID_HEADER } from './protocol.js';
import type { GuestRequest } from './serve.js';

/** Facts about the function that a Lambda context exposes. */
export interface LambdaInfo {
  functionName: string;
  functionVersion: string;
  instance: string;
  memoryMb: number;
  timeoutMs: number;
}

/** What the guest writes back for a Lambda result. */
export interface HttpResult {
  status: number;
  /** Flat [name, value, name, value…] list, duplicates allowed (set-cookie). */
  headers: string[];
  body: Buffer;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const TEXT_TYPE = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|[\w.+-]+\+(json|xml)))/i;

/** API Gateway's `requestContext.time` format: `12/Mar/2020:19:03:58 +0000`. */
function clf(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Builds an API Gateway HTTP API payload v2.0 event, so existing Lambda handlers run unmodified. */
export function buildEvent(req: GuestRequest, body: Buffer, requestId: string): Record<string, unknown> {
  const headers: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (key === DEADLINE_HEADER) continue;
    headers[key] = key in headers ? `${headers[key]},${raw[i + 1]}` : raw[i + 1]!;
  }
  // Payload v2 moves cookies out of the headers into their own list.
  const cookies = headers.cookie?.split(/;\s*/).filter(Boolean);
  delete headers.cookie;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const rawQueryString = q === -1 ? '' : url.slice(q + 1);
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(rawQueryString)) query[k] = k in query ? `${query[k]},${v}` : v;
  const now = new Date();
  const host = headers['x-forwarded-host'] ?? headers.host ?? 'localhost';
  const isText = body.length === 0 || TEXT_TYPE.test(headers['content-type'] ?? '');
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    ...(cookies?.length ? { cookies } : {}),
    headers,
    ...(rawQueryString ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: 'anonymous',
      apiId: 'nimbus',
      domainName: host,
      domainPrefix: host.split('.')[0],
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: headers['x-forwarded-for']?.split(',')[0]?.trim() ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: clf(now),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: body.toString(isText ? 'utf8' : 'base64') } : {}),
    isBase64Encoded: !isText,
  };
}

/** The Lambda `context` object: names, ids, and the time left before the gateway gives up. */
export function buildContext(info: LambdaInfo, req: GuestRequest, requestId: string): Record<string, unknown> {
  const header = Number(req.headers[DEADLINE_HEADER]);
  const deadline = Number.isFinite(header) && header > 0 ? header : Date.now() + info.timeoutMs;
  const arn = `arn:aws:lambda:local:000000000000:function:${info.functionName}`;
  return {
    functionName: info.functionName,
    functionVersion: info.functionVersion,
    awsRequestId: String(req.headers[REQUEST_ID_HEADER] ?? requestId),
    memoryLimitInMB: String(info.memoryMb),
    invokedFunctionArn: arn,
    logGroupName: `/aws/lambda/${info.functionName}`,
    logStreamName: `${info.functionVersion}/${info.instance}`,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

/**
 * Calls a Lambda handler, async or callback style (`(event, context, callback)`), including the
 * legacy `context.done/succeed/fail`. Resolves with whichever answer comes first.
 */
export function invokeLambda(
  handler: (...args: unknown[]) => unknown,
  event: unknown,
  context: Record<string, unknown>,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const callback = (err: unknown, result?: unknown) => (err ? reject(err) : resolve(result));
    context.done = callback;
    context.succeed = (result: unknown) => resolve(result);
    context.fail = (err: unknown) => reject(err);
    try {
      const returned = handler(event, context, callback);
      // A callback-style handler returns undefined and answers through the callback.
      if (handler.length < 3 || (returned && typeof (returned as Promise<unknown>).then === 'function')) {
        Promise.resolve(returned).then(resolve, reject);
      }
    } catch (err) {
      reject(err);
    }
  });
}

/** Maps a Lambda result to HTTP with API Gateway's v2 rules. */
export function fromLambdaResult(result: unknown): HttpResult {
  if (!result || typeof result !== 'object' || !('statusCode' in result)) {
    // Lambda's rule for anything else: JSON-serialise it, 200, application/json.
    const body = typeof result === 'string' ? result : (JSON.stringify(result) ?? 'null');
    return { status: 200, headers: ['content-type', 'application/json'], body: Buffer.from(body) };
  }
  const r = result as {
    statusCode: number;
    headers?: Record<string, unknown>;
    multiValueHeaders?: Record<string, unknown[]>;
    cookies?: string[];
    body?: unknown;
    isBase64Encoded?: boolean;
  };
  const headers: string[] = [];
  for (const [k, v] of Object.entries(r.headers ?? {})) headers.push(k, String(v));
  for (const [k, vs] of Object.entries(r.multiValueHeaders ?? {})) for (const v of vs ?? []) headers.push(k, String(v));
  for (const c of r.cookies ?? []) headers.push('set-cookie', c);
  const text =
    r.body === undefined || r.body === null ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
  return { status: Number(r.statusCode), headers, body: Buffer.from(text, r.isBase64Encoded ? 'base64' : 'utf8') };
}
