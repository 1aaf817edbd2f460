import { itBehavesLikeAStartedService } from '@platform/shared-types/testing';
import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';

describe('monitoring service basics (real stores)', () => {
  itBehavesLikeAStartedService({ service: 'monitoring', store: 'postgres', start: (env) => start(configSchema.parse(env)) });
});
