import type { Logger } from '@platform/shared-types';
import { connectPostgres, connectRedis, ensurePostgresDatabase, migrateLatest, pgUrlFor, ping } from '@platform/shared-types/stores/postgres';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { Config } from './config.ts';
import { migrations } from './migrations/index.ts';

export interface Stores {
  db: Knex;
  redis: Redis;
  ready(): Promise<Record<string, boolean>>;
  close(): Promise<void>;
}

/** Connects PostgreSQL (creating the database when missing, then migrating to latest) and Redis. */
export async function connectStores(config: Pick<Config, 'PG_URL' | 'PG_DB' | 'REDIS_URL'>, logger?: Logger): Promise<Stores> {
  await ensurePostgresDatabase(config.PG_URL, config.PG_DB);
  const db = connectPostgres(pgUrlFor(config.PG_URL, config.PG_DB));
  await migrateLatest(db, migrations);
  const redis = await connectRedis(config.REDIS_URL, logger);
  return {
    db,
    redis,
    ready: async () => ({ postgres: await ping.postgres(db), redis: await ping.redis(redis) }),
    close: async () => {
      await Promise.allSettled([db.destroy(), redis.quit()]);
    },
  };
}
