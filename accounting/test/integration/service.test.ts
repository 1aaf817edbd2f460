import { dropPostgresDatabase } from '@platform/shared-types/stores';
import { createTestAuth, itBehavesLikeAService, storeUrls, uniqueDbName } from '@platform/shared-types/testing';
import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';

describe('accounting service basics (real stores)', () => {
  const auth = createTestAuth();
  const urls = storeUrls();
  const dbName = uniqueDbName('accounting');
  let service: Awaited<ReturnType<typeof start>>;

  before(async () => {
    service = await start(configSchema.parse({ ...auth.secrets, NODE_ENV: 'test', PORT: '0', PG_URL: urls.PG_URL, PG_DB: dbName, REDIS_URL: urls.REDIS_URL }));
  });
  after(async () => {
    await service.stop();
    await dropPostgresDatabase(urls.PG_URL, dbName);
  });

  itBehavesLikeAService({ baseUrl: () => service.url, auth, service: 'accounting', storeChecks: ['postgres', 'redis'] });
});
