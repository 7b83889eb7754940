import { CliError, UsageError } from './errors.js';

/** An error answer of the API (`{"error": {"code", "message", "details"?}}`), or a non-JSON failure. */
export class ApiError extends CliError {
  readonly status: number;
  /** Catalogue code (`NIMBUS_ERR_…`); undefined when the answer was not a Nimbus error body. */
  readonly code?: string;
  readonly details?: Record<string, unknown>;

  constructor(status: number, message: string, code?: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Connection errors that mean "nothing is listening there", as opposed to a request that broke midway. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export interface RequestOptions {
  method?: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
  body?: RequestInit['body'];
  signal?: AbortSignal;
}

/** The CLI's only way to the server. Paths are relative to the base URL (`/api/v1/…`, `/fn/…`). */
export interface ApiClient {
  readonly baseUrl: string;
  /** Sends a request and returns the response whatever its status. Throws CliError when the server cannot be reached. */
  request(path: string, options?: RequestOptions): Promise<Response>;
  /** Sends a request and parses a 2xx JSON answer; any other status becomes an ApiError. */
  json<T>(path: string, options?: RequestOptions): Promise<T>;
}

/** Checks the base URL up front so a typo in `--url` is a usage error, not a confusing fetch failure. */
export function parseBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`invalid --url: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`invalid --url (http or https only): ${raw}`);
  return url.href.replace(/\/+$/, '');
}

export function createApiClient(options: { url: string; fetch?: typeof fetch }): ApiClient {
  const baseUrl = parseBaseUrl(options.url);
  const doFetch = options.fetch ?? fetch;

  async function request(path: string, req: RequestOptions = {}): Promise<Response> {
    const url = new URL(baseUrl + path);
    for (const [key, value] of Object.entries(req.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, value);
    const init: RequestInit & { duplex?: 'half' } = {
      method: req.method ?? 'GET',
      headers: req.headers,
      signal: req.signal,
    };
    if (req.body !== undefined) {
      init.body = req.body;
      // fetch insists on this for streamed bodies (undici/fetch spec); harmless for buffers.
      init.duplex = 'half';
    }
    try {
      return await doFetch(url, init);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const code = (err as { cause?: { code?: string } }).cause?.code;
      if (code && UNREACHABLE_CODES.has(code)) {
        throw new CliError(`cannot reach Nimbus at ${baseUrl} (is \`nimbus serve\` running?)`, { cause: err });
      }
      const detail = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
      // fetch refuses the ports browsers block (6000, 6665-6669, 10080…) before connecting.
      if (detail === 'bad port')
        throw new UsageError(`fetch refuses to connect to port ${new URL(baseUrl).port}; use another port`);
      throw new CliError(`request to ${baseUrl} failed: ${detail}`, { cause: err });
    }
  }

  return {
    baseUrl,
    request,
    async json<T>(path: string, req?: RequestOptions): Promise<T> {
      const res = await request(path, req);
      if (!res.ok) throw await toApiError(res);
      return (await res.json()) as T;
    },
  };
}

/** Reads an error response: the catalogue body when there is one, else the HTTP status line. */
export async function toApiError(res: Response, text?: string): Promise<ApiError> {
  const body = text ?? (await res.text().catch(() => ''));
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const e = parsed.error;
    if (e && typeof e.message === 'string') {
      return new ApiError(
        res.status,
        e.message,
        typeof e.code === 'string' ? e.code : undefined,
        e.details && typeof e.details === 'object' ? (e.details as Record<string, unknown>) : undefined,
      );
    }
  } catch {
    // Not JSON: a proxy in between, or not a Nimbus server at all. Fall through to the status line.
  }
  return new ApiError(res.status, `HTTP ${res.status} ${res.statusText}`.trim());
}

/** The one stderr line for an API error: message, where (for build errors), and the code to look up in docs/errors.md. */
export function describeApiError(err: ApiError): string {
  let message = err.message;
  const d = err.details;
  if (d && typeof d.file === 'string') {
    const at = [d.file, d.line, d.column].filter((x) => x !== undefined && x !== null).join(':');
    if (!message.includes(at)) message += ` (at ${at})`;
  }
  return err.code ? `${message} (${err.code})` : message;
}
