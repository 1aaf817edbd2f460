import { type AccessClaims, ApiError, apiKeyRedisKeys, revocationKeys } from '@platform/shared-types';
import { z } from 'zod';
import type { GateCheck, GatePolicy } from '../engine/exchange.ts';
import { type ApiKeyResolver, invalidApiKey } from './api-keys.ts';

export const revocationAction = z.object({}).strict();

/**
 * DESIGN section 5: `revoked:jti:<jti>` and `revoked:before:<userId>` (tokens issued at or before the value, in
 * ms, are dead). A gate policy: its checks ride in the same Redis script call as the rate-limit rules next to it.
 * With Redis down the gate answers from this instance's copy of the recent revocations; without a loaded copy
 * the token is refused (no fail-open for revocation, whatever the rate-limit fail mode).
 */
export function revocationPolicy(deps: {
  failMode: () => 'open' | 'closed';
  apiKeys?: ApiKeyResolver;
  /** revoked: the token is; unknown: no answer from Redis nor a loaded copy (metrics) */
  onRefusal?: (reason: 'revoked' | 'unknown') => void;
}): GatePolicy {
  // never changed by the gate or the policies that read them
  const checksByClaims = new WeakMap<AccessClaims, GateCheck[]>();
  return {
    kind: 'gate',
    collect(ex) {
      // an API-key request stands or falls with the key's entry (its minted token is this gateway's own)
      if (ex.apiKey) return [{ kind: 'api-key', key: apiKeyRedisKeys.entry(ex.apiKey.hash), expected: ex.apiKey.entry }];
      const { claims } = ex;
      if (!claims) return [];
      // the same verified claims (the token cache hands out one object per token): the same checks, built once
      let checks = checksByClaims.get(claims);
      if (!checks) {
        checks = [
          { kind: 'revoked-jti', key: revocationKeys.jti(claims.jti), jti: claims.jti },
          {
            kind: 'revoked-before',
            key: revocationKeys.before(claims.sub),
            userId: claims.sub,
            iat: claims.iat,
            ...(claims.iatMs === undefined ? {} : { iatMs: claims.iatMs }),
          },
        ];
        checksByClaims.set(claims, checks);
      }
      return checks;
    },
    apply(ex, result, checks) {
      if (checks.length === 0) return;
      if (ex.apiKey) {
        // no fail-open for keys: a deleted key must not come back while Redis is away
        if (result.source !== 'redis') throw new ApiError('UPSTREAM_UNAVAILABLE', 'API key store unavailable', { headers: { 'retry-after': '2' } });
        if (result.revoked) {
          deps.apiKeys?.forget(ex.apiKey.hash);
          throw invalidApiKey();
        }
        if (result.apiKeyEntry !== undefined) deps.apiKeys?.refresh(ex, result.apiKeyEntry);
        deps.apiKeys?.noteUsed(ex.apiKey.keyId);
        return;
      }
      if (result.revoked) {
        deps.onRefusal?.('revoked');
        throw new ApiError('TOKEN_REVOKED', 'Token has been revoked');
      }
      if (result.revocationUnknown || (result.source === 'unavailable' && deps.failMode() === 'closed')) deps.onRefusal?.('unknown');
      if (result.revocationUnknown) throw new ApiError('UPSTREAM_UNAVAILABLE', 'Revocation store unavailable', { headers: { 'retry-after': '2' } });
      if (result.source === 'unavailable' && deps.failMode() === 'closed') {
        throw new ApiError('UPSTREAM_UNAVAILABLE', 'Revocation store unavailable');
      }
    },
  };
}
