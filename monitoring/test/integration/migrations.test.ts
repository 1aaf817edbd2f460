import { itMigratesUpAndDown } from '@platform/shared-types/testing';
import { migrations } from '../../src/migrations/index.ts';

describe('monitoring migrations', () => {
  itMigratesUpAndDown({ service: 'monitoring', migrations, tables: ['relationships', 'processed_user_events'] });
});
