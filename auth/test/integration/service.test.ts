import { createTestAuth, itBehavesLikeAService, storeUrls, uniqueDbName } from '@platform/shared-types/testing';

import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';

describe('auth service basics (real stores)', () => {
  const auth = createTestAuth();
  const urls = storeUrls();

  let service: Awaited<ReturnType<typeof start>>;

  before(async () => {
    service = await start(
      configSchema.parse({
        ...auth.secrets,
        NODE_ENV: 'test',
        PORT: '0',
        MONGO_URL: urls.MONGO_URL,
        MONGO_DB: uniqueDbName('auth'),
        REDIS_URL: urls.REDIS_URL,
      }),
    );
  });
  after(async () => {
    await service.stores.mongo.dropDatabase();
    await service.stop();
  });

  itBehavesLikeAService({ baseUrl: () => service.url, auth, service: 'auth', storeChecks: ['mongo', 'redis'] });
});
