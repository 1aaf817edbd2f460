import {
  type AccessClaims,
  type Actor,
  ApiError,
  actorFromClaims,
  bearerToken,
  type Keyring,
  looksLikeApiKey,
  verifyAccessToken,
} from '@platform/shared-types';
import { z } from 'zod';
import type { StepPolicy } from '../engine/exchange.ts';
import type { ApiKeyResolver } from './api-keys.ts';

export const verifyTokenAction = z.object({}).strict();

/**
 * Verified tokens are remembered briefly (bounded, never past `exp`), so a client's requests cost one
 * HMAC check per token rather than per request. Revocation is checked on every request regardless.
 */
export class TokenCache {
  readonly #entries = new Map<string, AccessClaims>();
  readonly #max: number;
  constructor(max = 10_000) {
    this.#max = max;
  }
  get(token: string, nowSeconds: number): AccessClaims | undefined {
    const claims = this.#entries.get(token);
    if (claims && claims.exp > nowSeconds) return claims;
    if (claims) this.#entries.delete(token);
    return undefined;
  }
  set(token: string, claims: AccessClaims): void {
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(token, claims);
  }
}

/** DESIGN section 2: the access token (or API key, DESIGN 5b) is verified once, here, before anything is proxied. */
export function verifyTokenPolicy(deps: { keyring: Keyring; cache: TokenCache; apiKeys?: ApiKeyResolver }): StepPolicy {
  // one actor per verified claims object (the cache hands out the same one per token); nothing writes to it
  const actors = new WeakMap<AccessClaims, Actor>();
  return {
    kind: 'step',
    run(ex) {
      const token = bearerToken(ex.req.headers.authorization);
      if (!token) throw new ApiError('UNAUTHENTICATED', 'Bearer token required', { headers: { 'www-authenticate': 'Bearer' } });
      if (deps.apiKeys && looksLikeApiKey(token)) return deps.apiKeys.resolve(ex, token);
      const now = Math.floor(Date.now() / 1000);
      let claims = deps.cache.get(token, now);
      if (!claims) {
        try {
          claims = verifyAccessToken(deps.keyring, token);
        } catch (error) {
          if (error instanceof ApiError) throw new ApiError(error.code, error.message, { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } });
          throw error;
        }
        deps.cache.set(token, claims);
      }
      ex.token = token;
      ex.claims = claims;
      let actor = actors.get(claims);
      if (!actor) {
        actor = actorFromClaims(claims);
        actors.set(claims, actor);
      }
      ex.actor = actor;
    },
  };
}
