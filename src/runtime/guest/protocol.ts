/**
 * The wire details shared by the guest and the process provider. The guest is bundled on its own
 * and may import nothing from the host, so the host imports these from here (never the reverse).
 */

/** Starts a console line printed while serving a request: `\x1e` + requestId + `\x1f` + text. */
export const LOG_MARK = '\x1e';
/** Ends the request id in a marked line. */
export const LOG_SEP = '\x1f';

/** File descriptor (a pipe the provider opens) where the guest writes one readiness JSON line. */
export const READY_FD = 3;

/** The one line written on READY_FD. */
export interface ReadyMessage {
  ready: boolean;
  /** Why the instance cannot start (module threw at import, app never listened…). */
  error?: string;
  /** A pool cell (cell.ts) is warm and waits for its function; a second line follows. */
  cell?: boolean;
  /**
   * How long the function's init took in this process (importing the module and running its
   * top-level code), in ms. Unset for restored instances: their init ran at the snapshot build.
   */
  initMs?: number;
}

/**
 * The one line a pool cell reads on stdin: the function it becomes. `env` replaces the cell's
 * whole environment (the NIMBUS_* variables a spawned instance gets, and the function's own).
 */
export interface SpecialiseMessage {
  env: Record<string, string>;
  /** Working directory: the function's code. */
  cwd: string;
}

// Mirrors runtime/types.ts and core/errors.ts (the guest cannot import host code).
export const REQUEST_ID_HEADER = 'x-nimbus-request-id';
export const DEADLINE_HEADER = 'x-nimbus-deadline';
export const ERROR_HEADER = 'x-nimbus-error';

/** Environment variable naming the function's own env keys (JSON array), so `env` holds only those. */
export const ENV_KEYS_VAR = 'NIMBUS_ENV_KEYS';
