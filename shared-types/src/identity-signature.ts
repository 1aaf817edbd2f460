import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Actor } from './claims.ts';
import { ApiError } from './errors.ts';
import { IDENTITY_HEADERS } from './headers.ts';
import { isRole } from './roles.ts';

export const IDENTITY_SIGNATURE_MAX_AGE_SECONDS = 60;

type HeaderBag = Record<string, string | string[] | undefined>;

function canonical(timestamp: number, actor: Actor, requestId: string): string {
  const fields = ['v1', String(timestamp), actor.userId, actor.username, actor.email, actor.role, actor.jti ?? '', requestId];
  // appended only when present, so signatures of ordinary requests keep their form
  if (actor.apiKeyId) fields.push(`akid:${actor.apiKeyId}`);
  return fields.join('\n');
}

function mac(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('hex');
}

/** The headers the gateway injects for a verified actor (DESIGN section 3). */
export function signIdentityHeaders(secret: string, actor: Actor, requestId: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  const headers: Record<string, string> = {
    [IDENTITY_HEADERS.userId]: actor.userId,
    [IDENTITY_HEADERS.username]: actor.username,
    [IDENTITY_HEADERS.email]: actor.email,
    [IDENTITY_HEADERS.role]: actor.role,
    [IDENTITY_HEADERS.jti]: actor.jti ?? '',
    [IDENTITY_HEADERS.requestId]: requestId,
    [IDENTITY_HEADERS.signature]: `t=${timestamp},v1=${mac(secret, canonical(timestamp, actor, requestId))}`,
  };
  if (actor.apiKeyId) headers[IDENTITY_HEADERS.apiKeyId] = actor.apiKeyId;
  return headers;
}

function single(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) return undefined; // duplicated identity headers are never trusted
  return value;
}

/** Verifies injected identity headers; throws UNAUTHENTICATED unless signed and fresh. */
export function verifyIdentityHeaders(secret: string, headers: HeaderBag, nowSeconds = Math.floor(Date.now() / 1000)): Actor {
  const signature = single(headers, IDENTITY_HEADERS.signature);
  const match = signature ? /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(signature) : null;
  if (!match) throw new ApiError('UNAUTHENTICATED', 'Missing or malformed identity signature');
  const timestamp = Number(match[1]);
  if (Math.abs(nowSeconds - timestamp) > IDENTITY_SIGNATURE_MAX_AGE_SECONDS) throw new ApiError('UNAUTHENTICATED', 'Stale identity signature');
  const role = single(headers, IDENTITY_HEADERS.role);
  const actor: Actor = {
    userId: single(headers, IDENTITY_HEADERS.userId) ?? '',
    username: single(headers, IDENTITY_HEADERS.username) ?? '',
    email: single(headers, IDENTITY_HEADERS.email) ?? '',
    role: isRole(role) ? role : 'enduser',
  };
  const jti = single(headers, IDENTITY_HEADERS.jti);
  if (jti) actor.jti = jti;
  const apiKeyId = single(headers, IDENTITY_HEADERS.apiKeyId);
  if (apiKeyId) actor.apiKeyId = apiKeyId;
  const requestId = single(headers, IDENTITY_HEADERS.requestId) ?? '';
  const expected = Buffer.from(mac(secret, canonical(timestamp, actor, requestId)), 'hex');
  const given = Buffer.from(match[2] as string, 'hex');
  if (!isRole(role) || !actor.userId || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new ApiError('UNAUTHENTICATED', 'Invalid identity signature');
  }
  return actor;
}
