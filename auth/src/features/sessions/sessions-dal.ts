import type { Types } from 'mongoose';
import type { Models, RefreshTokenDoc } from '../../documents.ts';

/** Data access for refresh tokens. Every state change is a conditional update (no transactions on FerretDB). */
export function sessionsDal(models: Models) {
  const { RefreshToken } = models;
  return {
    create(doc: Omit<RefreshTokenDoc, '_id' | 'createdAt' | 'status' | 'rotatedAt' | 'revokedAt'>): Promise<RefreshTokenDoc> {
      return RefreshToken.create({ ...doc, status: 'active' }).then((created) => created.toObject() as RefreshTokenDoc);
    },
    findByHash(tokenHash: string): Promise<RefreshTokenDoc | null> {
      return RefreshToken.findOne({ tokenHash }).lean<RefreshTokenDoc>();
    },
    findByAccessJti(userId: string, accessJti: string): Promise<RefreshTokenDoc | null> {
      return RefreshToken.findOne({ userId, accessJti }).lean<RefreshTokenDoc>();
    },
    deleteById(id: Types.ObjectId): Promise<unknown> {
      return RefreshToken.deleteOne({ _id: id });
    },
    /** Records that the token was retired (the single winner is decided in Redis, see sessions-service). */
    async markRotated(id: Types.ObjectId): Promise<void> {
      await RefreshToken.updateOne({ _id: id, status: 'active' }, { $set: { status: 'rotated', rotatedAt: new Date() } });
    },
    /** Families that may still hold a usable token. */
    families(userId: string): Promise<string[]> {
      return RefreshToken.distinct('family', { userId, status: { $in: ['active', 'rotated'] }, expiresAt: { $gt: new Date() } });
    },
    /** Access tokens of the matching refresh tokens that may still be alive (to put on the revocation list). */
    async liveAccessTokens(filter: { family?: string; userId?: string }): Promise<Array<{ jti: string; expiresAt: number }>> {
      const docs = await RefreshToken.find({ ...filter, accessExpiresAt: { $gt: new Date() } }).lean<RefreshTokenDoc[]>();
      return docs.map((doc) => ({ jti: doc.accessJti, expiresAt: Math.floor(doc.accessExpiresAt.getTime() / 1000) }));
    },
    /** Revokes the still-active tokens; rotated ones keep their state so a later replay is still seen as reuse. */
    revokeActive(filter: { family?: string; userId?: string }): Promise<unknown> {
      return RefreshToken.updateMany({ ...filter, status: 'active' }, { $set: { status: 'revoked', revokedAt: new Date() } });
    },
    async deleteExpired(now = new Date()): Promise<number> {
      const result = await RefreshToken.deleteMany({ expiresAt: { $lt: now } });
      return result.deletedCount;
    },
  };
}

export type SessionsDal = ReturnType<typeof sessionsDal>;
