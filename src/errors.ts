/**
 * Errors carry a stable `code` so that callers, logs and tests can tell failures apart without
 * matching message text (messages are not a stable API).
 */
export const ErrorCode = {
  CONFIG_INVALID: 'TSM_ERR_CONFIG_INVALID',
  DUPLICATE_FACTORY: 'TSM_ERR_DUPLICATE_FACTORY',
  UNKNOWN_COMPONENT: 'TSM_ERR_UNKNOWN_COMPONENT',
  API_HTTP: 'TSM_ERR_API_HTTP',
  API_AUTH: 'TSM_ERR_API_AUTH',
  API_DECODE: 'TSM_ERR_API_DECODE',
  API_NETWORK: 'TSM_ERR_API_NETWORK',
  SCRAPE: 'TSM_ERR_SCRAPE',
  EXPOSITION_PARSE: 'TSM_ERR_EXPOSITION_PARSE',
  RELABEL_CONFIG: 'TSM_ERR_RELABEL_CONFIG',
  EXPORT: 'TSM_ERR_EXPORT',
  SHUTDOWN_TIMEOUT: 'TSM_ERR_SHUTDOWN_TIMEOUT',
  SECRET_FILE: 'TSM_ERR_SECRET_FILE',
  TLS_FILE: 'TSM_ERR_TLS_FILE',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error tsmetrics throws on purpose. */
export class TsmetricsError extends Error {
  readonly code: ErrorCodeValue;
  constructor(code: ErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TsmetricsError';
    this.code = code;
  }
}

/** One problem found while validating configuration: where it is and what is wrong. */
export interface ConfigProblem {
  /** File the key came from, or `env` for environment variables. */
  readonly source: string;
  /** Dotted key path, e.g. `receivers.tailscale_api/prod.interval`. */
  readonly path: string;
  readonly message: string;
}

/** Configuration is invalid; `problems` lists every issue found, not just the first. */
export class ConfigError extends TsmetricsError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super(ErrorCode.CONFIG_INVALID, problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.source}: ${p.path}: ${p.message}`;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
