import { CLOCK_TOLERANCE_SECONDS, encodeRevocation, REVOCATION_STREAM, revocationKeys } from '@platform/shared-types';
import type { ChainableCommander, Redis } from 'ioredis';

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Writes the keys the gateway reads (DESIGN section 5), and appends each revocation to REVOCATION_STREAM in
 * the same MULTI, so every gateway's and service's local copy learns it too (the gateway answers from that
 * copy while Redis is down). An access token is dead when `revoked:jti:<jti>` exists, or when it was issued
 * at or before `revoked:before:<userId>` (unix ms).
 */
export function revocationWriter(redis: Redis, accessTtlSeconds: number) {
  const windowMs = (accessTtlSeconds + 2 * CLOCK_TOLERANCE_SECONDS) * 1000;
  /** the stream keeps the last access-token lifetime (approximate trim: cheap, never shorter) */
  const append = (batch: ChainableCommander, fields: string[], nowMs: number) =>
    batch.xadd(REVOCATION_STREAM, 'MINID', '~', String(nowMs - windowMs), '*', ...fields);
  return {
    /** `revoked:jti:<jti>` until the token can no longer pass verification (exp plus clock tolerance) */
    async revokeJtis(tokens: Array<{ jti: string; expiresAt: number }>): Promise<void> {
      const now = nowSeconds();
      const live = tokens.filter((token) => token.expiresAt + CLOCK_TOLERANCE_SECONDS > now);
      if (live.length === 0) return;
      const batch = redis.multi();
      const nowMs = Date.now();
      for (const token of live) {
        const until = token.expiresAt + CLOCK_TOLERANCE_SECONDS;
        batch.set(revocationKeys.jti(token.jti), '1', 'EX', until - now);
        append(batch, encodeRevocation({ kind: 'jti', jti: token.jti, untilMs: until * 1000 }), nowMs);
      }
      await batch.exec();
    },
    /**
     * `revoked:before:<userId>` = now in ms; kept as long as any access token issued before can live. Resolves
     * only once the clock has passed that millisecond, so a token issued after this returns (the fresh pair of a
     * password change) is strictly after it and lives.
     */
    async revokeBefore(userId: string): Promise<number> {
      const atMs = Date.now();
      const batch = redis.multi();
      batch.set(revocationKeys.before(userId), String(atMs), 'PX', windowMs);
      append(batch, encodeRevocation({ kind: 'before', userId, atMs, untilMs: atMs + windowMs }), atMs);
      await batch.exec();
      while (Date.now() <= atMs) await new Promise((resolve) => setTimeout(resolve, 1));
      return atMs;
    },
  };
}
