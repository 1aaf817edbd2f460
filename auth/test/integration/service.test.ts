import { itBehavesLikeAStartedService } from '@platform/shared-types/testing';
import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';

describe('auth service basics (real stores)', () => {
  itBehavesLikeAStartedService({
    service: 'auth',
    store: 'mongo',
    start: (env) => start(configSchema.parse(env)),
    dropMongo: (service) => service.stores.mongo.dropDatabase(),
  });
});
