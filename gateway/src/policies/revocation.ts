import { ApiError, revocationKeys } from '@platform/shared-types';
import { z } from 'zod';
import type { GatePolicy } from '../engine/exchange.ts';

export const revocationAction = z.object({}).strict();

/**
 * DESIGN section 5: `revoked:jti:<jti>` and `revoked:before:<userId>` (tokens issued at or before the value, in
 * ms, are dead). A gate policy: its checks ride in the same Redis script call as the rate-limit rules next to it.
 * With Redis down the gate answers from this instance's copy of the recent revocations; without a loaded copy
 * the token is refused (no fail-open for revocation, whatever the rate-limit fail mode).
 */
export function revocationPolicy(deps: { failMode: () => 'open' | 'closed' }): GatePolicy {
  return {
    kind: 'gate',
    collect(ex) {
      if (!ex.claims) return [];
      return [
        { kind: 'revoked-jti', key: revocationKeys.jti(ex.claims.jti), jti: ex.claims.jti },
        {
          kind: 'revoked-before',
          key: revocationKeys.before(ex.claims.sub),
          userId: ex.claims.sub,
          iat: ex.claims.iat,
          ...(ex.claims.iatMs === undefined ? {} : { iatMs: ex.claims.iatMs }),
        },
      ];
    },
    apply(_ex, result, checks) {
      if (checks.length === 0) return;
      if (result.revoked) throw new ApiError('TOKEN_REVOKED', 'Token has been revoked');
      if (result.revocationUnknown) throw new ApiError('UPSTREAM_UNAVAILABLE', 'Revocation store unavailable', { headers: { 'retry-after': '2' } });
      if (result.source === 'unavailable' && deps.failMode() === 'closed') {
        throw new ApiError('UPSTREAM_UNAVAILABLE', 'Revocation store unavailable');
      }
    },
  };
}
