/**
 * One error hierarchy with stable codes. Scripts match on `code`; people read `message` and `hint`.
 * A message says what went wrong and where; the hint says what to do next.
 */

/** Every code is documented in docs/cli.md ("Error codes"); core/errors.test.ts checks the table. */
export const ErrorCodes = {
  USAGE: 'RETAP_USAGE',
  CONFIG_INVALID: 'RETAP_CONFIG_INVALID',
  /** A settings file names a key retap does not know (a typo, or a setting of another version). */
  CONFIG_UNKNOWN_KEY: 'RETAP_CONFIG_UNKNOWN_KEY',
  SNAPSHOT_INVALID: 'RETAP_SNAPSHOT_INVALID',
  SNAPSHOT_NOT_FOUND: 'RETAP_SNAPSHOT_NOT_FOUND',
  SNAPSHOT_EXISTS: 'RETAP_SNAPSHOT_EXISTS',
  ADDON_LOAD: 'RETAP_ADDON_LOAD',
  CAPTURE_UNAVAILABLE: 'RETAP_CAPTURE_UNAVAILABLE',
  CAPTURE_FAILED: 'RETAP_CAPTURE_FAILED',
  PERMISSION: 'RETAP_PERMISSION',
  ENV_SETUP: 'RETAP_ENV_SETUP',
  BUILD_NOT_READY: 'RETAP_BUILD_NOT_READY',
  BUILD_CRASHED: 'RETAP_BUILD_CRASHED',
  NOT_BUILT: 'RETAP_NOT_BUILT',
  RESULTS_TOO_LARGE: 'RETAP_RESULTS_TOO_LARGE',
  /**
   * A results file ends before its trailer, or its counts disagree with the lines read: the replay
   * was cut short or the file was truncated. Never judged as what it holds (a partial pass).
   */
  RESULTS_INCOMPLETE: 'RETAP_RESULTS_INCOMPLETE',
  /** A results file holds no candidate run: there is nothing to judge (a verdict error, exit 3). */
  NO_CANDIDATE: 'RETAP_NO_CANDIDATE',
  /** A replay would send redacted credentials no recorded answer hands out and no secret provides. */
  SECRET_MISSING: 'RETAP_SECRET_MISSING',
  /** The Kubernetes API server could not be reached, or no usable kubeconfig was found. */
  K8S_UNREACHABLE: 'RETAP_K8S_UNREACHABLE',
  /** The API server refused a call (RBAC): the message names the verb and resource. */
  K8S_FORBIDDEN: 'RETAP_K8S_FORBIDDEN',
  /** Any other API failure (invalid object, conflict, timeout waiting for a rollout). */
  K8S_API: 'RETAP_K8S_API',
  /** No ready retap agent on the cluster (or on a node that runs target pods). */
  K8S_AGENT_MISSING: 'RETAP_K8S_AGENT_MISSING',
  /** A replay's run pod (retap's worker: driver and mocks) died, restarted or was deleted mid-run. */
  K8S_RUN_POD_LOST: 'RETAP_K8S_RUN_POD_LOST',
  INTERNAL: 'RETAP_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Exit codes of the `retap` command (documented in docs/cli.md). */
export const ExitCodes = {
  OK: 0,
  ASSERTIONS_FAILED: 1,
  BUDGETS_FAILED: 2,
  INFRASTRUCTURE: 3,
  USAGE: 64,
} as const;

export interface RetapErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Machine-readable context (file, line, path, errno…), included in `--json` output. */
  details?: Record<string, unknown>;
}

export class RetapError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: RetapErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RetapError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** 64 for what the caller wrote wrong (flags, an unknown key in a settings file), else 3. */
  get exitCode(): number {
    return this.code === ErrorCodes.USAGE || this.code === ErrorCodes.CONFIG_UNKNOWN_KEY
      ? ExitCodes.USAGE
      : ExitCodes.INFRASTRUCTURE;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export function usageError(message: string, hint?: string): RetapError {
  return new RetapError(ErrorCodes.USAGE, message, { hint: hint ?? 'Run with --help to see the usage.' });
}

export function isRetapError(e: unknown): e is RetapError {
  return e instanceof RetapError;
}

/** Human text for any thrown value: message, then hint, then the chain of causes. */
export function formatError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const lines = [isRetapError(e) ? `${e.message} [${e.code}]` : e.message];
  if (isRetapError(e) && e.hint) lines.push(`  → ${e.hint}`);
  let cause: unknown = e.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    lines.push(`  caused by: ${cause instanceof Error ? cause.message : String(cause)}`);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return lines.join('\n');
}
