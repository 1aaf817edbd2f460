import { itMigratesUpAndDown } from '@platform/shared-types/testing';
import { migrations } from '../../src/migrations/index.ts';

describe('accounting migrations', () => {
  itMigratesUpAndDown({
    service: 'accounting',
    migrations,
    tables: ['accounts', 'allocations', 'ledger', 'model_prices', 'reservations', 'reservation_holds', 'usage', 'idempotency_keys'],
  });
});
