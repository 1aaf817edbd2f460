import { CLOCK_TOLERANCE_SECONDS, revocationKeys } from '@platform/shared-types';
import type { Redis } from 'ioredis';

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Writes the keys the gateway reads (DESIGN section 5). An access token is dead when `revoked:jti:<jti>`
 * exists, or when its `iat` is strictly less than `revoked:before:<userId>`.
 */
export function revocationWriter(redis: Redis, accessTtlSeconds: number) {
  return {
    /** `revoked:jti:<jti>` until the token can no longer pass verification (exp plus clock tolerance) */
    async revokeJtis(tokens: Array<{ jti: string; expiresAt: number }>): Promise<void> {
      const now = nowSeconds();
      const live = tokens.filter((token) => token.expiresAt + CLOCK_TOLERANCE_SECONDS > now);
      if (live.length === 0) return;
      const batch = redis.multi();
      for (const token of live) batch.set(revocationKeys.jti(token.jti), '1', 'EX', token.expiresAt + CLOCK_TOLERANCE_SECONDS - now);
      await batch.exec();
    },
    /** `revoked:before:<userId>` = now; kept as long as any access token issued before can live */
    async revokeBefore(userId: string): Promise<number> {
      const before = nowSeconds();
      await redis.set(revocationKeys.before(userId), String(before), 'EX', accessTtlSeconds + 2 * CLOCK_TOLERANCE_SECONDS);
      return before;
    },
  };
}
