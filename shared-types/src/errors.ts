/** The one closed list of error codes (DESIGN section 6) with their HTTP statuses and titles. */
export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, title: 'Validation failed' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  INVALID_CREDENTIALS: { status: 401, title: 'Invalid credentials' },
  TOKEN_EXPIRED: { status: 401, title: 'Token expired' },
  TOKEN_REVOKED: { status: 401, title: 'Token revoked' },
  TOKEN_REUSED: { status: 401, title: 'Refresh token reused' },
  EMAIL_NOT_VERIFIED: { status: 403, title: 'Email not verified' },
  FORBIDDEN: { status: 403, title: 'Forbidden' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  CONFLICT: { status: 409, title: 'Conflict' },
  ACCOUNT_LOCKED: { status: 423, title: 'Account locked' },
  INSUFFICIENT_CREDITS: { status: 402, title: 'Insufficient credits' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  QUOTA_EXCEEDED: { status: 429, title: 'Quota exceeded' },
  UPSTREAM_UNAVAILABLE: { status: 503, title: 'Upstream unavailable' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timeout' },
  INTERNAL: { status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemFieldError {
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  requestId: string;
  errors?: ProblemFieldError[];
  [extension: string]: unknown;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** An error that becomes a problem+json response. Throw it anywhere in a request. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors: ProblemFieldError[] | undefined;
  readonly extensions: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    detail?: string,
    options: { status?: number; errors?: ProblemFieldError[]; extensions?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(detail ?? ERROR_CODES[code].title, { cause: options.cause });
    this.name = 'ApiError';
    this.code = code;
    // UPSTREAM_UNAVAILABLE may be 502 or 503; every other code has exactly one status.
    this.status = code === 'UPSTREAM_UNAVAILABLE' && options.status === 502 ? 502 : ERROR_CODES[code].status;
    this.errors = options.errors;
    this.extensions = options.extensions;
    this.headers = options.headers;
  }
}

export function problem(
  code: ErrorCode,
  detail: string,
  requestId: string,
  extra: { status?: number; errors?: ProblemFieldError[]; extensions?: Record<string, unknown> } = {},
): Problem {
  const status = code === 'UPSTREAM_UNAVAILABLE' && extra.status === 502 ? 502 : ERROR_CODES[code].status;
  const body: Problem = {
    ...extra.extensions,
    type: `https://errors.platform.local/${code.toLowerCase().replaceAll('_', '-')}`,
    title: ERROR_CODES[code].title,
    status,
    code,
    detail,
    requestId,
  };
  if (extra.errors && extra.errors.length > 0) body.errors = extra.errors;
  return body;
}

export function problemFromError(error: ApiError, requestId: string): Problem {
  return problem(error.code, error.message, requestId, { status: error.status, errors: error.errors, extensions: error.extensions });
}
