import type { ErrorCode, Problem } from './errors.ts';

/**
 * DESIGN 6: the OpenAI-compatible routes under `/v1/` answer errors in OpenAI's shape (its SDKs parse
 * `error.message`, `error.type`, `error.code`, `error.param`), with the same status and our request id.
 */
export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
  requestId: string;
}

/** `/v1` and everything under it (exactly as routed: case-sensitive, DESIGN 7) */
export function isOpenAiPath(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/');
}

const TYPES: Record<ErrorCode, { type: string; code: string | null }> = {
  VALIDATION_FAILED: { type: 'invalid_request_error', code: null },
  UNAUTHENTICATED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  INVALID_CREDENTIALS: { type: 'invalid_request_error', code: 'invalid_api_key' },
  TOKEN_EXPIRED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  TOKEN_REVOKED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  TOKEN_REUSED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  EMAIL_NOT_VERIFIED: { type: 'permission_error', code: 'email_not_verified' },
  FORBIDDEN: { type: 'permission_error', code: 'permission_denied' },
  NOT_FOUND: { type: 'invalid_request_error', code: 'not_found' },
  CONFLICT: { type: 'invalid_request_error', code: 'conflict' },
  ACCOUNT_LOCKED: { type: 'permission_error', code: 'account_locked' },
  INSUFFICIENT_CREDITS: { type: 'insufficient_credits', code: 'insufficient_credits' },
  PAYLOAD_TOO_LARGE: { type: 'invalid_request_error', code: 'payload_too_large' },
  UNSUPPORTED_MEDIA_TYPE: { type: 'invalid_request_error', code: 'unsupported_media_type' },
  RATE_LIMITED: { type: 'requests', code: 'rate_limit_exceeded' },
  QUOTA_EXCEEDED: { type: 'insufficient_quota', code: 'insufficient_quota' },
  UPSTREAM_UNAVAILABLE: { type: 'server_error', code: 'upstream_unavailable' },
  UPSTREAM_TIMEOUT: { type: 'timeout', code: 'upstream_timeout' },
  INTERNAL: { type: 'server_error', code: null },
};

/**
 * The OpenAI form of a problem. A problem may carry `openaiCode` (e.g. `model_not_found`) and `param` as
 * extensions; otherwise `param` is the first invalid body field (`body.messages.0.content` -> `messages.0.content`).
 */
export function openAiErrorFromProblem(problem: Problem): OpenAiErrorBody {
  const mapped = TYPES[problem.code] ?? { type: 'server_error', code: null };
  const type = mapped.type;
  const code = typeof problem.openaiCode === 'string' ? problem.openaiCode : mapped.code;
  let param = typeof problem.param === 'string' ? problem.param : null;
  const firstField = problem.errors?.[0]?.path;
  if (param === null && firstField) param = firstField.replace(/^(body|query|params)\.?/, '') || null;
  let message = problem.detail;
  if (problem.errors && problem.errors.length > 0) message += `: ${problem.errors.map((e) => `${e.path.replace(/^body\./, '')}: ${e.message}`).join('; ')}`;
  return { error: { message, type, code, param }, requestId: problem.requestId };
}
