/** Identity headers the gateway injects (DESIGN section 3). Lower-case, as node exposes them. */
export const IDENTITY_HEADERS = {
  userId: 'x-user-id',
  username: 'x-username',
  email: 'x-user-email',
  role: 'x-user-role',
  jti: 'x-token-jti',
  /** API-key requests only (DESIGN 5b) */
  apiKeyId: 'x-api-key-id',
  requestId: 'x-request-id',
  signature: 'x-identity-signature',
} as const;

export const SERVICE_TOKEN_HEADER = 'x-service-token';
export const REQUEST_ID_HEADER = 'x-request-id';
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** Client-sent headers with these prefixes are deleted by the gateway before it injects its own. */
export const STRIPPED_HEADER_PREFIXES = ['x-user-', 'x-identity-', 'x-service-'] as const;

/** Headers whose presence means "this request claims an identity"; services then demand a valid signature. */
export const IDENTITY_CLAIM_HEADERS: readonly string[] = [
  IDENTITY_HEADERS.userId,
  IDENTITY_HEADERS.username,
  IDENTITY_HEADERS.email,
  IDENTITY_HEADERS.role,
  IDENTITY_HEADERS.jti,
  IDENTITY_HEADERS.apiKeyId,
  IDENTITY_HEADERS.signature,
];

export function isStrippedHeader(name: string): boolean {
  // every stripped name starts with `x-`: one character code settles most headers (this runs for each header of each request)
  const first = name.charCodeAt(0);
  if (first !== 120 && first !== 88) return false;
  const lower = name.toLowerCase();
  return (
    STRIPPED_HEADER_PREFIXES.some((prefix) => lower.startsWith(prefix)) ||
    lower === IDENTITY_HEADERS.username ||
    lower === IDENTITY_HEADERS.jti ||
    lower === IDENTITY_HEADERS.apiKeyId
  );
}

/** A client-supplied request id is kept only when it is well formed. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{8,128}$/;
