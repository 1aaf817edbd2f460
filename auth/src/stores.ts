import type { Logger } from '@platform/shared-types';
import { connectMongo, connectRedis, ping } from '@platform/shared-types/stores/mongo';
import type { Redis } from 'ioredis';
import type mongoose from 'mongoose';
import type { Config } from './config.ts';
import { createModels, type Models } from './documents.ts';
import { BcryptPool } from './lib/bcrypt-pool.ts';
import { createPasswordHasher, type PasswordHasher } from './lib/passwords.ts';

/** Connections and process-wide resources with a lifetime (the bcrypt worker pool is closed with the stores). */
export interface Stores {
  mongo: mongoose.Connection;
  redis: Redis;
  models: Models;
  passwords: PasswordHasher;
  ready(): Promise<Record<string, boolean>>;
  close(): Promise<void>;
}

export async function connectStores(
  config: Pick<Config, 'MONGO_URL' | 'MONGO_DB' | 'REDIS_URL' | 'BCRYPT_COST' | 'BCRYPT_WORKERS'>,
  logger?: Logger,
): Promise<Stores> {
  const mongo = await connectMongo(config.MONGO_URL, config.MONGO_DB);
  const redis = await connectRedis(config.REDIS_URL, logger);
  const pool = new BcryptPool(config.BCRYPT_WORKERS);
  try {
    const models = await createModels(mongo);
    const passwords = await createPasswordHasher(pool, config.BCRYPT_COST);
    return {
      mongo,
      redis,
      models,
      passwords,
      ready: async () => ({ mongo: await ping.mongo(mongo), redis: await ping.redis(redis) }),
      close: async () => {
        await Promise.allSettled([mongo.close(), redis.quit(), pool.close()]);
      },
    };
  } catch (error) {
    await Promise.allSettled([mongo.close(), redis.quit(), pool.close()]);
    throw error;
  }
}
