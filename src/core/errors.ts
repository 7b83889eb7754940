/**
 * The one catalogue of Nimbus error codes. Every error the platform reports — API responses,
 * data-path failures (tagged with the `x-nimbus-error` header), CLI messages — carries one of
 * these codes. `docs/errors.md` mirrors this table with a how-to-fix line for each; a test keeps
 * the two in step.
 */
export const ErrorCodes = {
  NIMBUS_ERR_INVALID_REQUEST: {
    status: 400,
    userFault: true,
    fix: 'Check the request body and parameters against /api/v1/openapi.json.',
  },
  NIMBUS_ERR_INVALID_NAME: {
    status: 400,
    userFault: true,
    fix: 'Use 1-63 lowercase letters, digits and dashes, starting with a letter.',
  },
  NIMBUS_ERR_INVALID_MANIFEST: {
    status: 400,
    userFault: true,
    fix: 'Fix the field named in the message in nimbus.yaml / nimbus.json or the matching CLI flag.',
  },
  NIMBUS_ERR_INVALID_ARCHIVE: {
    status: 400,
    userFault: true,
    fix: 'Upload a gzip-compressed tar of the source directory (the CLI does this for you).',
  },
  NIMBUS_ERR_BUILD_FAILED: {
    status: 400,
    userFault: true,
    fix: 'Fix the source error at the file and line given; the previous revision keeps serving.',
  },
  NIMBUS_ERR_HANDLER_NOT_FOUND: {
    status: 400,
    userFault: true,
    fix: 'Export `default` (a fetch handler) or `handler` (Lambda style) from the entry module.',
  },
  NIMBUS_ERR_SNAPSHOT_FAILED: {
    status: 400,
    userFault: true,
    fix: 'The init cannot be snapshotted (the message says why: handles left open, node:http loaded at init…); fix it, or use `snapshot: true` to deploy without a snapshot when it fails.',
  },
  NIMBUS_ERR_FORBIDDEN: {
    status: 403,
    userFault: true,
    fix: 'Function instances may call other functions through /fn/NAME/, not the control-plane API; manage functions from the host (the CLI).',
  },
  NIMBUS_ERR_FUNCTION_NOT_FOUND: {
    status: 404,
    userFault: true,
    fix: 'Deploy the function first, or check its name with `nimbus ls`.',
  },
  NIMBUS_ERR_REVISION_NOT_FOUND: { status: 404, userFault: true, fix: 'List the revisions with `nimbus get NAME`.' },
  NIMBUS_ERR_INVOCATION_NOT_FOUND: {
    status: 404,
    userFault: true,
    fix: 'Check the id printed by `nimbus invoke --async`; results are kept for 24 h (dead letters for 14 days), then pruned.',
  },
  NIMBUS_ERR_TRIGGER_NOT_FOUND: { status: 404, userFault: true, fix: 'List the triggers with `nimbus triggers ls`.' },
  NIMBUS_ERR_ROLLOUT_NOT_FOUND: {
    status: 404,
    userFault: true,
    fix: 'Start one with `nimbus deploy DIR --canary` or a `rollout:` block in the manifest.',
  },
  NIMBUS_ERR_ROUTE_NOT_FOUND: {
    status: 404,
    userFault: true,
    fix: 'Functions are served under /fn/NAME/; the API lives under /api/v1/.',
  },
  NIMBUS_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    userFault: true,
    fix: 'See /api/v1/openapi.json for the methods each path accepts.',
  },
  NIMBUS_ERR_CONFLICT: {
    status: 409,
    userFault: true,
    fix: 'Someone changed the object at the same time; read it again and retry.',
  },
  NIMBUS_ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    userFault: true,
    fix: 'Send a smaller body, or raise the limit with `nimbus serve --max-body`.',
  },
  NIMBUS_ERR_HEADERS_TOO_LARGE: {
    status: 431,
    userFault: true,
    fix: 'Send fewer or smaller headers: node:http takes 16 KB of request head in all.',
  },
  NIMBUS_ERR_REQUEST_TIMEOUT: {
    status: 408,
    userFault: true,
    fix: 'Send the whole request head (and body) without long pauses; slow senders are cut off.',
  },
  NIMBUS_ERR_FUNCTION_ERROR: {
    status: 500,
    userFault: true,
    fix: 'The function threw: read its stack with `nimbus logs NAME`.',
  },
  NIMBUS_ERR_UPGRADE_UNSUPPORTED: {
    status: 501,
    userFault: true,
    fix: 'Protocol upgrades (WebSocket) reach app-mode functions only (`runtime: app`, any program listening on $PORT); deploy the server as an app, or use plain HTTP.',
  },
  NIMBUS_ERR_INSTANCE_CRASHED: {
    status: 502,
    userFault: true,
    fix: 'The instance exited while serving the request; `nimbus logs NAME` shows why. It is replaced automatically.',
  },
  NIMBUS_ERR_OUT_OF_MEMORY: {
    status: 502,
    userFault: true,
    fix: 'The instance used more than its `memory` and was killed; raise `memory` in the manifest or use less. It is replaced automatically.',
  },
  NIMBUS_ERR_START_FAILED: {
    status: 502,
    userFault: true,
    fix: 'The instance could not start (crash at init, or not ready in time): read `nimbus logs NAME`.',
  },
  NIMBUS_ERR_OVERLOADED: {
    status: 503,
    userFault: false,
    fix: 'Every instance is busy and the wait queue is full: retry after the Retry-After delay, or raise scale.max / concurrency.',
  },
  NIMBUS_ERR_SHUTTING_DOWN: {
    status: 503,
    userFault: false,
    fix: 'The node is draining for shutdown; retry against another node or after restart.',
  },
  NIMBUS_ERR_TIMEOUT: {
    status: 504,
    userFault: true,
    fix: 'The function ran past its timeout; make it faster or raise `timeout` in the manifest.',
  },
  NIMBUS_ERR_INTERNAL: { status: 500, userFault: false, fix: 'A bug in Nimbus: please report it with the server log.' },
} as const satisfies Record<string, { status: number; userFault: boolean; fix: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error with a catalogue code. `status` and `userFault` come from the catalogue. */
export class NimbusError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly userFault: boolean;
  /** Extra machine-readable detail, e.g. `{ file, line }` for a build error. */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, { cause: options.cause });
    this.name = 'NimbusError';
    this.code = code;
    this.status = ErrorCodes[code].status;
    this.userFault = ErrorCodes[code].userFault;
    this.details = options.details;
  }

  /** The JSON body every API and data-path error uses. */
  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

/** True when `err`, or anything in its cause chain, is a NimbusError with `code`. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof NimbusError && e.code === code) return true;
  }
  return false;
}

/** Wraps anything thrown into a NimbusError, keeping catalogue errors as they are. */
export function toNimbusError(err: unknown): NimbusError {
  if (err instanceof NimbusError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new NimbusError('NIMBUS_ERR_INTERNAL', `Internal error: ${message}`, { cause: err });
}

/** Header that marks a response the platform made (not the function). */
export const PLATFORM_ERROR_HEADER = 'x-nimbus-error';
