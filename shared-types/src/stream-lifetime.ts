import type { AccessClaims, Actor } from './claims.ts';
import { ApiError } from './errors.ts';
import { type RevocationMirror, revokes } from './revocation.ts';
import { bearerToken, type Keyring, verifyAccessToken } from './tokens.ts';

export interface StreamEnd {
  code: 'TOKEN_REVOKED' | 'TOKEN_EXPIRED';
  detail: string;
}

/** setTimeout's largest delay; an access token never lives this long, but a bad clock must not fire it at once */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The access token a long-lived answer (event stream, observe relay) runs under: the one the gateway forwarded
 * in Authorization, verified, and the same user as the signed identity. Its exp and revocation end the stream.
 */
export function streamToken(keyring: Keyring, authorization: string | string[] | undefined, actor: Actor): AccessClaims {
  const token = bearerToken(authorization);
  if (!token) throw new ApiError('UNAUTHENTICATED', 'A stream needs the bearer token it runs under');
  const claims = verifyAccessToken(keyring, token);
  if (claims.sub !== actor.userId) throw new ApiError('UNAUTHENTICATED', 'The bearer token is not the signed identity');
  return claims;
}

/**
 * Calls `onEnd` once when the token dies: revoked (logout, logout-all, password change or reset, role change,
 * disable: learned from this process' revocation copy, so on every instance) or expired. Returns the stopper.
 */
export function watchStreamToken(options: { claims: AccessClaims; revocations: RevocationMirror; onEnd(reason: StreamEnd): void }): () => void {
  const { claims } = options;
  let ended = false;
  const end = (reason: StreamEnd) => {
    if (ended) return;
    ended = true;
    stop();
    options.onEnd(reason);
  };
  const timer = setTimeout(
    () => end({ code: 'TOKEN_EXPIRED', detail: 'The access token of this stream expired; reconnect with a fresh one' }),
    Math.min(MAX_TIMER_MS, Math.max(0, claims.exp * 1000 - Date.now())),
  );
  const unsubscribe = options.revocations.onRevocation((revocation) => {
    if (revokes(revocation, claims)) end({ code: 'TOKEN_REVOKED', detail: 'The access token of this stream has been revoked' });
  });
  function stop() {
    clearTimeout(timer);
    unsubscribe();
  }
  // revoked between the gateway's check and now
  if (options.revocations.isRevoked(claims)) end({ code: 'TOKEN_REVOKED', detail: 'The access token of this stream has been revoked' });
  return () => {
    ended = true;
    stop();
  };
}
