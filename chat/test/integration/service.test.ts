import { itBehavesLikeAStartedService } from '@platform/shared-types/testing';
import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';

describe('chat service basics (real stores)', () => {
  itBehavesLikeAStartedService({
    service: 'chat',
    store: 'mongo',
    start: (env) => start(configSchema.parse(env)),
    dropMongo: (service) => service.stores.mongo.dropDatabase(),
  });
});
