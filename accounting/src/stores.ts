import { type Logger, loadModelCatalog } from '@platform/shared-types';
import { connectPostgres, connectRedis, ensurePostgresDatabase, migrateLatest, pgUrlFor, ping } from '@platform/shared-types/stores/postgres';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { Config } from './config.ts';
import { pricesDal } from './features/prices/prices-dal.ts';
import { migrations } from './migrations/index.ts';

export interface Stores {
  db: Knex;
  redis: Redis;
  ready(): Promise<Record<string, boolean>>;
  close(): Promise<void>;
}

/**
 * Connects PostgreSQL (creating the database when missing, migrating to latest, adding prices for catalog
 * models that have none) and Redis.
 */
export async function connectStores(
  config: Pick<Config, 'PG_URL' | 'PG_DB' | 'REDIS_URL'> & Partial<Pick<Config, 'PG_POOL_MAX' | 'MODELS_FILE'>>,
  logger?: Logger,
): Promise<Stores> {
  await ensurePostgresDatabase(config.PG_URL, config.PG_DB);
  const db = connectPostgres(pgUrlFor(config.PG_URL, config.PG_DB), { pool: { min: 0, max: config.PG_POOL_MAX ?? 10 } });
  await migrateLatest(db, migrations);
  await pricesDal(db).seedPrices(loadModelCatalog(config.MODELS_FILE));
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
