// Every store helper (tools and tests that use several stores). A part imports only its store's module,
// `@platform/shared-types/stores/mongo` or `/stores/postgres`, so it loads only that store's driver.
import { ping as mongoPing } from './mongo.ts';
import { ping as postgresPing } from './postgres.ts';

export { connectMongo } from './mongo.ts';
export {
  connectPostgres,
  dropPostgresDatabase,
  ensurePostgresDatabase,
  ListMigrationSource,
  type Migration,
  migrateDownAll,
  migrateLatest,
  pgUrlFor,
} from './postgres.ts';
export { connectRedis, reportRedisErrors } from './redis.ts';

export const ping = { ...mongoPing, ...postgresPing };
