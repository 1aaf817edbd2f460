import type { Logger } from '@platform/shared-types';
import { connectMongo, connectRedis, ping } from '@platform/shared-types/stores/mongo';
import type { Redis } from 'ioredis';
import type mongoose from 'mongoose';
import type { Config } from './config.ts';

export interface Stores {
  mongo: mongoose.Connection;
  redis: Redis;
  ready(): Promise<Record<string, boolean>>;
  close(): Promise<void>;
}

export async function connectStores(config: Pick<Config, 'MONGO_URL' | 'MONGO_DB' | 'REDIS_URL'>, logger?: Logger): Promise<Stores> {
  const mongo = await connectMongo(config.MONGO_URL, config.MONGO_DB);
  const redis = await connectRedis(config.REDIS_URL, logger);
  return {
    mongo,
    redis,
    ready: async () => ({ mongo: await ping.mongo(mongo), redis: await ping.redis(redis) }),
    close: async () => {
      await Promise.allSettled([mongo.close(), redis.quit()]);
    },
  };
}
