import type { Knex } from 'knex';
import { iso, num } from '../../db.ts';

/** Data access for the allocation and deduction functions of migrations/003 and the read side of credits (balances, ledger). */

export interface AllocationView {
  id: string;
  userId: string;
  credits: number;
  remaining: number;
  expiresAt: string | null;
  notes: string | null;
  allocatedBy: string;
  createdAt: string;
}

interface AllocationRow {
  id: string;
  user_id: string;
  credits: string;
  remaining: string;
  expires_at: Date | null;
  notes: string | null;
  allocated_by: string;
  created_at: Date;
}

export function allocationView(row: AllocationRow): AllocationView {
  return {
    id: String(row.id),
    userId: row.user_id,
    credits: num(row.credits),
    remaining: num(row.remaining),
    expiresAt: iso(row.expires_at),
    notes: row.notes,
    allocatedBy: row.allocated_by,
    createdAt: iso(row.created_at) as string,
  };
}

export interface LedgerEntry {
  id: string;
  type: string;
  amount: number;
  balanceAfter: number;
  reference: string | null;
  allocationId: string | null;
  reservationId: string | null;
  /** the API key the entry's reservation was made through */
  apiKeyId: string | null;
  createdBy: string | null;
  createdAt: string;
}

/** Every function runs on `knex`, or inside `trx` when one is given. */
export function creditsDal(knex: Knex) {
  return {
    async allocate(
      input: { userId: string; credits: number; expiresAt: Date | null; notes: string | null; allocatedBy: string },
      trx?: Knex.Transaction,
    ): Promise<{ allocation: AllocationView; available: number }> {
      const db = trx ?? knex;
      const { rows } = await db.raw('SELECT allocation_id, available FROM acc_allocate(?, ?, ?, ?, ?)', [
        input.userId,
        input.credits,
        input.expiresAt,
        input.notes,
        input.allocatedBy,
      ]);
      const row = await db<AllocationRow>('allocations').where({ id: rows[0].allocation_id }).first();
      return { allocation: allocationView(row as AllocationRow), available: num(rows[0].available) };
    },

    async deduct(
      input: { userId: string; credits: number; reference: string | null; by: string },
      trx?: Knex.Transaction,
    ): Promise<{ ledgerId: string; available: number }> {
      const db = trx ?? knex;
      const { rows } = await db.raw('SELECT ledger_id, available FROM acc_deduct(?, ?, ?, ?)', [input.userId, input.credits, input.reference, input.by]);
      return { ledgerId: String(rows[0].ledger_id), available: num(rows[0].available) };
    },

    /** Live balances: expired allocations stop counting at once, even before the sweeper writes their expiry. */
    async balances(userIds: string[], trx?: Knex.Transaction): Promise<Map<string, { available: number; reserved: number }>> {
      const db = trx ?? knex;
      if (userIds.length === 0) return new Map();
      const rows = await db('accounts as a')
        .leftJoin('allocations as al', function liveOnly() {
          this.on('al.user_id', '=', 'a.user_id').andOn('al.remaining', '>', db.raw('0'));
        })
        .whereIn('a.user_id', userIds)
        .groupBy('a.user_id', 'a.reserved')
        .select('a.user_id', 'a.reserved', db.raw('coalesce(sum(al.remaining) FILTER (WHERE al.expires_at IS NULL OR al.expires_at > now()), 0) AS available'));
      return new Map(
        rows.map((row: { user_id: string; available: string; reserved: string }) => [
          row.user_id,
          { available: num(row.available), reserved: num(row.reserved) },
        ]),
      );
    },

    /** Allocations that still hold credits and have not expired, soonest-expiring first (the spend order). */
    async liveAllocations(userId: string, trx?: Knex.Transaction): Promise<AllocationView[]> {
      const db = trx ?? knex;
      const rows = await db<AllocationRow>('allocations')
        .where({ user_id: userId })
        .andWhere('remaining', '>', 0)
        .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()))
        .orderByRaw('expires_at NULLS LAST, id');
      return rows.map(allocationView);
    },

    async ledgerPage(
      userId: string,
      options: { page: number; limit: number; type?: string },
      trx?: Knex.Transaction,
    ): Promise<{ entries: LedgerEntry[]; total: number }> {
      const db = trx ?? knex;
      const base = db('ledger').where({ user_id: userId });
      if (options.type) base.andWhere({ type: options.type });
      const [rows, count] = await Promise.all([
        db
          .from(base.clone().as('ledger'))
          // the API key a reservation's entries were made through (migration 006)
          .leftJoin('reservations', 'reservations.id', 'ledger.reservation_id')
          .select('ledger.*', 'reservations.api_key_id')
          .orderBy('ledger.id', 'desc')
          .limit(options.limit)
          .offset((options.page - 1) * options.limit),
        base.clone().count<{ count: string }[]>({ count: '*' }),
      ]);
      return {
        total: num(count[0]?.count),
        entries: rows.map((row) => ({
          id: String(row.id),
          type: row.type,
          amount: num(row.amount),
          balanceAfter: num(row.balance_after),
          reference: row.reference,
          allocationId: row.allocation_id === null ? null : String(row.allocation_id),
          reservationId: row.reservation_id,
          apiKeyId: row.api_key_id ?? null,
          createdBy: row.created_by,
          createdAt: iso(row.created_at) as string,
        })),
      };
    },

    /** Users with allocations past expiry that still hold credits (for the sweeper). */
    async usersWithDueAllocations(limit: number, trx?: Knex.Transaction): Promise<string[]> {
      const db = trx ?? knex;
      const rows = await db('allocations').distinct('user_id').where('remaining', '>', 0).andWhere('expires_at', '<=', db.fn.now()).limit(limit);
      return rows.map((row: { user_id: string }) => row.user_id);
    },

    /**
     * Expires the user's allocations past expiry (an `expiry` ledger entry each) and returns the available credits
     * after it. acc_lock (migration 003) is the function that does it: every money change first locks the account row and
     * expires what is due, so this is that first step alone (the row lock ends with the statement).
     */
    async expireDueAllocations(userId: string, trx?: Knex.Transaction): Promise<number> {
      const db = trx ?? knex;
      const { rows } = await db.raw('SELECT acc_lock(?) AS available', [userId]);
      return num(rows[0]?.available);
    },
  };
}

export type CreditsDal = ReturnType<typeof creditsDal>;
