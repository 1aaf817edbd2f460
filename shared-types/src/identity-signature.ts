import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import type { Actor } from './claims.ts';
import { ApiError } from './errors.ts';
import { IDENTITY_HEADERS } from './headers.ts';
import { isRole } from './roles.ts';

export const IDENTITY_SIGNATURE_MAX_AGE_SECONDS = 60;

type HeaderBag = Record<string, string | string[] | undefined>;

/**
 * What a signature is bound to (DESIGN section 3): the request line the service receives and the service it is
 * meant for, so a captured header set is worth nothing on another method, path or service.
 */
export interface IdentityBinding {
  method: string;
  /** the request path as sent upstream, without the query string */
  path: string;
  /** the target service's name (the gateway's serviceEndpoint name; the service's own name on verify) */
  service: string;
}

/** The path of a request target (`/a/b?x=1` -> `/a/b`), as both sides see it. */
export function bindingPath(target: string): string {
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
}

export function identityValuesList(actor: Actor, requestId: string): string[] {
  const values = [actor.userId, actor.username, actor.email, actor.role, actor.jti ?? '', requestId];
  // appended only when present (DESIGN 5b), so signatures of ordinary requests keep their form
  if (actor.apiKeyId) values.push(`akid:${actor.apiKeyId}`);
  return values;
}

/** the signed text: v2, the timestamp, METHOD, path, service, then identityValuesList(actor, requestId), one a line */
function canonical(timestamp: number, actor: Actor, requestId: string, binding: IdentityBinding): string {
  // concatenated, not joined from an array: the gateway builds it on every request
  const text = `v2\n${timestamp}\n${binding.method.toUpperCase()}\n${binding.path}\n${binding.service}\n${actor.userId}\n${actor.username}\n${actor.email}\n${actor.role}\n${actor.jti ?? ''}\n${requestId}`;
  return actor.apiKeyId ? `${text}\nakid:${actor.apiKeyId}` : text;
}

/** the secret as a KeyObject, made once: an HMAC keyed by a string imports the key again on every call */
let lastKey: { secret: string; key: KeyObject } | undefined;

function mac(secret: string, payload: string): string {
  if (lastKey?.secret !== secret) lastKey = { secret, key: createSecretKey(Buffer.from(secret, 'utf8')) };
  return createHmac('sha256', lastKey.key).update(payload).digest('hex');
}

/** The identity headers without a signature. */
export function identityValues(actor: Actor, requestId: string): Record<string, string> {
  return {
    [IDENTITY_HEADERS.userId]: actor.userId,
    [IDENTITY_HEADERS.username]: actor.username,
    [IDENTITY_HEADERS.email]: actor.email,
    [IDENTITY_HEADERS.role]: actor.role,
    [IDENTITY_HEADERS.jti]: actor.jti ?? '',
    [IDENTITY_HEADERS.requestId]: requestId,
    ...(actor.apiKeyId ? { [IDENTITY_HEADERS.apiKeyId]: actor.apiKeyId } : {}),
  };
}

/** Writes the identity headers of one request into `headers` (the gateway's upstream headers, or a new object). */
export type IdentityHeaderWriter = (
  headers: Record<string, string | string[]>,
  actor: Actor,
  requestId: string,
  binding: IdentityBinding,
  timestamp?: number,
) => void;

/**
 * The headers the gateway injects for a verified actor on one request to one service (DESIGN section 3), written
 * straight into the headers it forwards (no intermediate objects: this runs on every request), the key made once.
 */
export function identitySigner(secret: string): IdentityHeaderWriter {
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  return (headers, actor, requestId, binding, timestamp = Math.floor(Date.now() / 1000)) => {
    headers[IDENTITY_HEADERS.userId] = actor.userId;
    headers[IDENTITY_HEADERS.username] = actor.username;
    headers[IDENTITY_HEADERS.email] = actor.email;
    headers[IDENTITY_HEADERS.role] = actor.role;
    headers[IDENTITY_HEADERS.jti] = actor.jti ?? '';
    headers[IDENTITY_HEADERS.requestId] = requestId;
    if (actor.apiKeyId) headers[IDENTITY_HEADERS.apiKeyId] = actor.apiKeyId;
    const signature = createHmac('sha256', key)
      .update(canonical(timestamp, actor, requestId, binding))
      .digest('hex');
    headers[IDENTITY_HEADERS.signature] = `t=${timestamp},v2=${signature}`;
  };
}

/** identitySigner's headers as a new object (tests, tools), the signer of the last secret kept */
let lastSigner: { secret: string; write: IdentityHeaderWriter } | undefined;

export function signIdentityHeaders(
  secret: string,
  actor: Actor,
  requestId: string,
  binding: IdentityBinding,
  timestamp = Math.floor(Date.now() / 1000),
): Record<string, string> {
  if (lastSigner?.secret !== secret) lastSigner = { secret, write: identitySigner(secret) };
  const headers: Record<string, string> = {};
  lastSigner.write(headers, actor, requestId, binding, timestamp);
  return headers;
}

function single(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) return undefined; // duplicated identity headers are never trusted
  return value;
}

/** The actor the identity headers claim (unverified), for the verifier and the test kit's signer. */
export function claimedActor(headers: HeaderBag): { actor: Actor; requestId: string; roleValid: boolean } {
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
  return { actor, requestId: single(headers, IDENTITY_HEADERS.requestId) ?? '', roleValid: isRole(role) };
}

/**
 * Verifies injected identity headers against the request this service received; throws UNAUTHENTICATED unless
 * signed for this method, path and service, and fresh.
 */
export function verifyIdentityHeaders(secret: string, headers: HeaderBag, binding: IdentityBinding, nowSeconds = Math.floor(Date.now() / 1000)): Actor {
  const signature = single(headers, IDENTITY_HEADERS.signature);
  const match = signature ? /^t=(\d{1,12}),v2=([0-9a-f]{64})$/.exec(signature) : null;
  if (!match) throw new ApiError('UNAUTHENTICATED', 'Missing or malformed identity signature');
  const timestamp = Number(match[1]);
  if (Math.abs(nowSeconds - timestamp) > IDENTITY_SIGNATURE_MAX_AGE_SECONDS) throw new ApiError('UNAUTHENTICATED', 'Stale identity signature');
  const { actor, requestId, roleValid } = claimedActor(headers);
  const expected = Buffer.from(mac(secret, canonical(timestamp, actor, requestId, binding)), 'hex');
  const given = Buffer.from(match[2] as string, 'hex');
  if (!roleValid || !actor.userId || expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new ApiError('UNAUTHENTICATED', 'Invalid identity signature');
  }
  return actor;
}
