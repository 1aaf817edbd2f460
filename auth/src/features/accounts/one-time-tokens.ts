import type { Types } from 'mongoose';
import { randomToken, sha256 } from '../../lib/secrets.ts';
import type { Models, OneTimeKind, OneTimeTokenDoc } from '../../models.ts';

/** Single-use tokens (email verification, password reset), stored hashed. */
export function oneTimeTokens(models: Models) {
  const { OneTimeToken } = models;
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
    /** Marks the token used; only one caller can win (conditional update). */
    async consume(token: string, kind: OneTimeKind): Promise<OneTimeTokenDoc | null> {
      return OneTimeToken.findOneAndUpdate(usable(token, kind), { $set: { usedAt: new Date() } }, { returnDocument: 'after' }).lean<OneTimeTokenDoc>();
    },
    deleteForUser(userId: Types.ObjectId): Promise<unknown> {
      return OneTimeToken.deleteMany({ userId });
    },
  };
}
