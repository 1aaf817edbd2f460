// The DESIGN section 8 invariant, checked from outside after each scenario with accounting's own checker
// (`invariantViolations`) on the throwaway database this e2e run owns. Read-only.
import { connectPostgres, pgUrlFor } from '@platform/shared-types/stores';
import { invariantViolations } from '../../accounting/src/features/credits/invariant.ts';
import type { Platform } from './platform.ts';

export async function assertLedgerInvariant(platform: Platform, userId: string): Promise<void> {
  const db = connectPostgres(pgUrlFor(platform.env.PG_URL as string, platform.env.ACCOUNTING_PG_DB as string), { pool: { min: 0, max: 1 } });
  try {
    const violations = await invariantViolations(db, userId);
    if (violations.length > 0) throw new Error(`ledger invariant broken for ${userId}: ${violations.join('; ')}`);
  } finally {
    await db.destroy();
  }
}
