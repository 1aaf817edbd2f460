import { ApiError, revocationKeys } from '@platform/shared-types';
import { z } from 'zod';
import type { GatePolicy } from '../engine/exchange.ts';

export const revocationAction = z.object({}).strict();

/**
 * DESIGN section 5: `revoked:jti:<jti>` and `revoked:before:<userId>` (tokens with iat < value are dead).
 * A gate policy: its checks ride in the same Redis script call as the rate-limit rules next to it.
 */
export function revocationPolicy(deps: { failMode: () => 'open' | 'closed' }): GatePolicy {
  return {
    kind: 'gate',
    collect(ex) {
      if (!ex.claims) return [];
      return [
        { kind: 'revoked-jti', key: revocationKeys.jti(ex.claims.jti) },
        { kind: 'revoked-before', key: revocationKeys.before(ex.claims.sub), iat: ex.claims.iat },
      ];
    },
    apply(_ex, result, checks) {
      if (checks.length === 0) return;
      if (result.revoked) throw new ApiError('TOKEN_REVOKED', 'Token has been revoked');
      if (result.source === 'unavailable' && deps.failMode() === 'closed') {
        throw new ApiError('UPSTREAM_UNAVAILABLE', 'Revocation store unavailable');
      }
    },
  };
}
