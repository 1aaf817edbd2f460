import { createHash, createSecretKey, type KeyObject, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { AccessClaims, RefreshClaims, ServiceClaims, ServiceName } from './claims.ts';
import { ApiError } from './errors.ts';
import { isRole } from './roles.ts';

export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
export const REFRESH_TOKEN_TTL_SECONDS = 7 * 24 * 60 * 60;
export const SERVICE_TOKEN_MAX_TTL_SECONDS = 60;
export const CLOCK_TOLERANCE_SECONDS = 30;
export const MIN_SECRET_BYTES = 32;
const ALGORITHM = 'HS256';

interface SigningKey {
  kid: string;
  key: KeyObject;
}

/** Current key signs; current and previous verify. `kid` picks the key. */
export interface Keyring {
  readonly current: SigningKey;
  readonly byKid: ReadonlyMap<string, KeyObject>;
}

/** A short hash of the secret: it identifies the key without revealing any of its characters. */
export function kidOf(secret: string): string {
  return createHash('sha256').update('kid:').update(secret).digest('base64url').slice(0, 12);
}

export function createKeyring(secret: string, previous?: string): Keyring {
  for (const s of [secret, previous]) {
    if (s !== undefined && Buffer.byteLength(s) < MIN_SECRET_BYTES) throw new Error(`token secrets must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  // A KeyObject makes jsonwebtoken skip per-call secret conversion (~50x faster verify).
  const current = { kid: kidOf(secret), key: createSecretKey(Buffer.from(secret)) };
  const byKid = new Map<string, KeyObject>([[current.kid, current.key]]);
  if (previous) byKid.set(kidOf(previous), createSecretKey(Buffer.from(previous)));
  return { current, byKid };
}

export interface IdentityInput {
  sub: string;
  username: string;
  email: string;
  role: AccessClaims['role'];
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * `iat` is whole seconds (RFC 7519); `iatMs` adds the millisecond, so `revoked:before` can tell a token issued
 * just after a revocation from one issued just before it in the same second (DESIGN section 5). `iat` is set
 * from the same instant, so the two never disagree.
 */
function issuedNow(): { iat: number; iatMs: number } {
  const iatMs = Date.now();
  return { iat: Math.floor(iatMs / 1000), iatMs };
}

export function signAccessToken(keyring: Keyring, identity: IdentityInput, options: { jti?: string; ttlSeconds?: number; apiKeyId?: string } = {}): string {
  const payload = {
    sub: identity.sub,
    username: identity.username,
    email: identity.email,
    role: identity.role,
    type: 'access',
    jti: options.jti ?? randomUUID(),
    // DESIGN 2: tokens the gateway mints for an API-key request say so
    ...(options.apiKeyId ? { amr: ['api_key'], akid: options.apiKeyId } : {}),
    ...issuedNow(),
  };
  return jwt.sign(payload, keyring.current.key, {
    algorithm: ALGORITHM,
    keyid: keyring.current.kid,
    expiresIn: options.ttlSeconds ?? ACCESS_TOKEN_TTL_SECONDS,
  });
}

export function signRefreshToken(keyring: Keyring, identity: IdentityInput, options: { fam: string; jti?: string; ttlSeconds?: number }): string {
  const payload = {
    sub: identity.sub,
    username: identity.username,
    email: identity.email,
    role: identity.role,
    type: 'refresh',
    fam: options.fam,
    jti: options.jti ?? randomUUID(),
    ...issuedNow(),
  };
  return jwt.sign(payload, keyring.current.key, {
    algorithm: ALGORITHM,
    keyid: keyring.current.kid,
    expiresIn: options.ttlSeconds ?? REFRESH_TOKEN_TTL_SECONDS,
  });
}

/** Verifies signature, pinned alg, kid, exp and iat (with tolerance); returns the raw payload. */
function verifyRaw(keyring: Keyring, token: string): Record<string, unknown> {
  if (typeof token !== 'string' || token.length === 0 || token.length > 8192) throw new ApiError('UNAUTHENTICATED', 'Malformed token');
  const decoded = jwt.decode(token, { complete: true });
  if (!decoded || typeof decoded.payload !== 'object' || decoded.payload === null) throw new ApiError('UNAUTHENTICATED', 'Malformed token');
  if (decoded.header.alg !== ALGORITHM) throw new ApiError('UNAUTHENTICATED', 'Unsupported token algorithm');
  const kid = decoded.header.kid;
  const key = typeof kid === 'string' ? keyring.byKid.get(kid) : undefined;
  if (!key) throw new ApiError('UNAUTHENTICATED', 'Unknown signing key');
  let payload: Record<string, unknown>;
  try {
    payload = jwt.verify(token, key, { algorithms: [ALGORITHM], clockTolerance: CLOCK_TOLERANCE_SECONDS }) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof jwt.TokenExpiredError) throw new ApiError('TOKEN_EXPIRED', 'Token expired');
    throw new ApiError('UNAUTHENTICATED', 'Invalid token');
  }
  const iat = payload.iat;
  const exp = payload.exp;
  if (typeof iat !== 'number' || typeof exp !== 'number') throw new ApiError('UNAUTHENTICATED', 'Token lacks iat or exp');
  if (iat > nowSeconds() + CLOCK_TOLERANCE_SECONDS) throw new ApiError('UNAUTHENTICATED', 'Token issued in the future');
  // optional (tokens from before it existed lack it); when present it must be the same instant as iat
  if (payload.iatMs !== undefined && (!Number.isSafeInteger(payload.iatMs) || Math.floor((payload.iatMs as number) / 1000) !== iat)) {
    throw new ApiError('UNAUTHENTICATED', 'Token iatMs does not match iat');
  }
  return payload;
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function assertIdentityClaims(payload: Record<string, unknown>): void {
  if (
    !isNonEmptyString(payload.sub) ||
    !isNonEmptyString(payload.username) ||
    !isNonEmptyString(payload.email) ||
    !isRole(payload.role) ||
    !isNonEmptyString(payload.jti)
  ) {
    throw new ApiError('UNAUTHENTICATED', 'Token lacks required claims');
  }
}

export function verifyAccessToken(keyring: Keyring, token: string): AccessClaims {
  const payload = verifyRaw(keyring, token);
  if (payload.type !== 'access') throw new ApiError('UNAUTHENTICATED', 'Not an access token');
  assertIdentityClaims(payload);
  return payload as unknown as AccessClaims;
}

export function verifyRefreshToken(keyring: Keyring, token: string): RefreshClaims {
  const payload = verifyRaw(keyring, token);
  if (payload.type !== 'refresh') throw new ApiError('UNAUTHENTICATED', 'Not a refresh token');
  assertIdentityClaims(payload);
  if (!isNonEmptyString(payload.fam)) throw new ApiError('UNAUTHENTICATED', 'Token lacks required claims');
  return payload as unknown as RefreshClaims;
}

/** Service-to-service token (DESIGN section 4): short-lived, audience-bound, signed with INTERNAL_SECRET. */
/** `issuedAt` (seconds; default now): the `iat` the token's lifetime counts from */
export function signServiceToken(
  keyring: Keyring,
  iss: ServiceName,
  aud: ServiceName,
  ttlSeconds = SERVICE_TOKEN_MAX_TTL_SECONDS,
  issuedAt = nowSeconds(),
): string {
  return jwt.sign({ type: 'service', iat: issuedAt }, keyring.current.key, {
    algorithm: ALGORITHM,
    keyid: keyring.current.kid,
    issuer: iss,
    audience: aud,
    expiresIn: Math.min(ttlSeconds, SERVICE_TOKEN_MAX_TTL_SECONDS),
  });
}

export function verifyServiceToken(keyring: Keyring, token: string, audience: ServiceName): ServiceClaims {
  const payload = verifyRaw(keyring, token);
  if (payload.type !== 'service') throw new ApiError('UNAUTHENTICATED', 'Not a service token');
  if (payload.aud !== audience) throw new ApiError('UNAUTHENTICATED', 'Service token audience mismatch');
  if (!isNonEmptyString(payload.iss)) throw new ApiError('UNAUTHENTICATED', 'Service token lacks issuer');
  const lifetime = (payload.exp as number) - (payload.iat as number);
  if (lifetime > SERVICE_TOKEN_MAX_TTL_SECONDS) throw new ApiError('UNAUTHENTICATED', 'Service token lives too long');
  return payload as unknown as ServiceClaims;
}

/** Reads `Authorization: Bearer <token>`; undefined when absent or not a bearer. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}
