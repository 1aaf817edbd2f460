import { type ApiKeyEntry, apiKeyRedisKeys } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import { isValidObjectId, Types } from 'mongoose';
import type { ApiKeyDoc, Models, UserDoc } from '../../documents.ts';

export interface NewApiKey {
  userId: string;
  name: string;
  keyHash: string;
  prefix: string;
  expiresAt: Date | null;
  creditLimit: number | null;
}

/** API-key documents (MongoDB) and their gateway entries (Redis, DESIGN 5b). */
export function apiKeysDal(models: Models, redis: Redis) {
  const { ApiKey } = models;
  const live = (userId: string) => ({ userId: new Types.ObjectId(userId), deletedAt: null });

  return {
    async create(input: NewApiKey): Promise<ApiKeyDoc> {
      const doc = await ApiKey.create({ ...input, userId: new Types.ObjectId(input.userId) });
      return doc.toObject();
    },
    async countLive(userId: string): Promise<number> {
      return ApiKey.countDocuments(live(userId));
    },
    async listLive(userId: string): Promise<ApiKeyDoc[]> {
      return ApiKey.find(live(userId)).sort({ createdAt: 1, _id: 1 }).lean<ApiKeyDoc[]>();
    },
    async findLive(userId: string, id: string): Promise<ApiKeyDoc | null> {
      if (!isValidObjectId(id)) return null;
      return ApiKey.findOne({ ...live(userId), _id: new Types.ObjectId(id) }).lean<ApiKeyDoc>();
    },
    async findAny(id: string): Promise<ApiKeyDoc | null> {
      if (!isValidObjectId(id)) return null;
      return ApiKey.findById(id).lean<ApiKeyDoc>();
    },
    async markDeleted(id: Types.ObjectId): Promise<void> {
      await ApiKey.updateOne({ _id: id, deletedAt: null }, { $set: { deletedAt: new Date() } });
    },
    async removeDoc(id: Types.ObjectId): Promise<void> {
      await ApiKey.deleteOne({ _id: id });
    },

    /** Writes (or rewrites) the gateway's entries of these keys, each with a TTL to its expiry; expired ones are removed. */
    async writeEntries(user: UserDoc, keys: ApiKeyDoc[]): Promise<void> {
      if (keys.length === 0) return;
      const batch = redis.multi();
      const now = Date.now();
      for (const key of keys) {
        const entry: ApiKeyEntry = {
          keyId: key._id.toString(),
          userId: user._id.toString(),
          username: user.username,
          email: user.email,
          role: user.role,
          ...(key.expiresAt ? { expiresAt: key.expiresAt.toISOString() } : {}),
        };
        const redisKey = apiKeyRedisKeys.entry(key.keyHash);
        if (!key.expiresAt) batch.set(redisKey, JSON.stringify(entry));
        else if (key.expiresAt.getTime() > now) batch.set(redisKey, JSON.stringify(entry), 'PX', key.expiresAt.getTime() - now);
        else batch.del(redisKey);
      }
      await execOrThrow(batch);
    },
    async removeEntries(keys: ApiKeyDoc[]): Promise<void> {
      if (keys.length === 0) return;
      await redis.del(...keys.map((key) => apiKeyRedisKeys.entry(key.keyHash)));
    },
    /** last-used times the gateway wrote (unix seconds), by key id */
    async lastUsed(keys: ApiKeyDoc[]): Promise<Map<string, Date>> {
      const found = new Map<string, Date>();
      if (keys.length === 0) return found;
      const values = await redis.mget(...keys.map((key) => apiKeyRedisKeys.lastUsed(key._id.toString())));
      keys.forEach((key, index) => {
        const seconds = Number(values[index]);
        if (values[index] && Number.isFinite(seconds)) found.set(key._id.toString(), new Date(seconds * 1000));
      });
      return found;
    },
  };
}

async function execOrThrow(batch: ReturnType<Redis['multi']>): Promise<void> {
  const results = await batch.exec();
  const failed = results?.find(([error]) => error);
  if (!results || failed) throw failed?.[0] ?? new Error('redis transaction aborted');
}

export type ApiKeysDal = ReturnType<typeof apiKeysDal>;
