import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { type Actor, IDENTITY_HEADERS, type IdentityBinding } from '@platform/shared-types';

/**
 * shared-types' `signIdentityHeaders` (DESIGN section 3) for the gateway's hot path: the same headers and the same
 * signature (the same canonical text, HMAC-SHA256 with INTERNAL_SECRET), written straight into the upstream
 * headers: one string built by concatenation, no intermediate header objects or arrays, the key imported once.
 * `test/unit/identity-signer.test.ts` holds it to shared-types' signer and verifier byte for byte.
 */
export function identitySigner(
  secret: string,
): (headers: Record<string, string | string[]>, actor: Actor, requestId: string, binding: IdentityBinding, timestamp?: number) => void {
  const key: KeyObject = createSecretKey(Buffer.from(secret, 'utf8'));
  return (headers, actor, requestId, binding, timestamp = Math.floor(Date.now() / 1000)) => {
    const jti = actor.jti ?? '';
    // identity-signature.ts canonical(): v2, timestamp, METHOD, path, service, then identityValuesList(actor, requestId)
    let text = `v2\n${timestamp}\n${binding.method.toUpperCase()}\n${binding.path}\n${binding.service}\n${actor.userId}\n${actor.username}\n${actor.email}\n${actor.role}\n${jti}\n${requestId}`;
    headers[IDENTITY_HEADERS.userId] = actor.userId;
    headers[IDENTITY_HEADERS.username] = actor.username;
    headers[IDENTITY_HEADERS.email] = actor.email;
    headers[IDENTITY_HEADERS.role] = actor.role;
    headers[IDENTITY_HEADERS.jti] = jti;
    headers[IDENTITY_HEADERS.requestId] = requestId;
    if (actor.apiKeyId) {
      text += `\nakid:${actor.apiKeyId}`;
      headers[IDENTITY_HEADERS.apiKeyId] = actor.apiKeyId;
    }
    headers[IDENTITY_HEADERS.signature] = `t=${timestamp},v2=${createHmac('sha256', key).update(text).digest('hex')}`;
  };
}
