import type { ErrorCode, Problem } from '@platform/shared-types';

/** The OpenAI-compatible routes (DESIGN 7) answer errors in OpenAI's shape (DESIGN 6). */
export function isOpenAiPath(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/');
}

const OPENAI_CODES: Partial<Record<ErrorCode, { type: string; code: string }>> = {
  UNAUTHENTICATED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  INVALID_CREDENTIALS: { type: 'invalid_request_error', code: 'invalid_api_key' },
  TOKEN_EXPIRED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  TOKEN_REVOKED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  TOKEN_REUSED: { type: 'invalid_request_error', code: 'invalid_api_key' },
  FORBIDDEN: { type: 'invalid_request_error', code: 'permission_denied' },
  NOT_FOUND: { type: 'invalid_request_error', code: 'not_found' },
  VALIDATION_FAILED: { type: 'invalid_request_error', code: 'invalid_request_error' },
  PAYLOAD_TOO_LARGE: { type: 'invalid_request_error', code: 'request_too_large' },
  UNSUPPORTED_MEDIA_TYPE: { type: 'invalid_request_error', code: 'unsupported_media_type' },
  INSUFFICIENT_CREDITS: { type: 'insufficient_quota', code: 'insufficient_quota' },
  RATE_LIMITED: { type: 'requests', code: 'rate_limit_exceeded' },
  QUOTA_EXCEEDED: { type: 'insufficient_quota', code: 'insufficient_quota' },
};

export function openAiError(body: Problem): { error: { message: string; type: string; code: string; param: null }; requestId: string } {
  const mapped = OPENAI_CODES[body.code as ErrorCode] ?? { type: 'server_error', code: body.code.toLowerCase() };
  return { error: { message: body.detail, type: mapped.type, code: mapped.code, param: null }, requestId: body.requestId };
}
