import type { Redis } from 'ioredis';
import type { Types } from 'mongoose';
import type { Models, OneTimeKind, OneTimeTokenDoc } from '../../documents.ts';
import { randomToken, sha256 } from '../../lib/secrets.ts';

/** Single-use tokens (email verification, password reset), stored hashed. */
export function oneTimeTokens(deps: { models: Pick<Models, 'OneTimeToken'>; redis: Redis; keyPrefix: string }) {
  const { OneTimeToken } = deps.models;
  const usable = (token: string, kind: OneTimeKind) => ({ tokenHash: sha256(token), kind, usedAt: null, expiresAt: { $gt: new Date() } });
  return {
    /** Issues a new token; earlier unused ones of the same kind stop working (only the latest mail counts). */
    async issue(userId: Types.ObjectId, kind: OneTimeKind, ttlSeconds: number): Promise<string> {
      const token = randomToken();
      await OneTimeToken.deleteMany({ userId, kind, usedAt: null });
      await OneTimeToken.create({ tokenHash: sha256(token), kind, userId, expiresAt: new Date(Date.now() + ttlSeconds * 1000), usedAt: null });
      return token;
    },
    /** The usable token, without consuming it. */
    peek(token: string, kind: OneTimeKind): Promise<OneTimeTokenDoc | null> {
      return OneTimeToken.findOne(usable(token, kind)).lean<OneTimeTokenDoc>();
    },
    /**
     * Marks the token used; exactly one caller wins. The winner is decided by Redis SET NX, because FerretDB
     * may let two concurrent conditional updates both match; the Mongo mark keeps it used after that key expires.
     */
    async consume(token: string, kind: OneTimeKind): Promise<OneTimeTokenDoc | null> {
      const doc = await OneTimeToken.findOne(usable(token, kind)).lean<OneTimeTokenDoc>();
      if (!doc) return null;
      const ttlMs = Math.max(1, doc.expiresAt.getTime() - Date.now());
      const won = await deps.redis.set(`${deps.keyPrefix}used-token:${doc.tokenHash}`, '1', 'PX', ttlMs, 'NX');
      if (won !== 'OK') return null;
      await OneTimeToken.updateOne({ _id: doc._id }, { $set: { usedAt: new Date() } });
      return doc;
    },
    deleteForUser(userId: Types.ObjectId): Promise<unknown> {
      return OneTimeToken.deleteMany({ userId });
    },
    /** Deletes the tokens expired before `now` (there is no TTL index on FerretDB); returns how many. */
    async deleteExpired(now: Date): Promise<number> {
      return (await OneTimeToken.deleteMany({ expiresAt: { $lt: now } })).deletedCount;
    },
  };
}

export type OneTimeTokens = ReturnType<typeof oneTimeTokens>;
