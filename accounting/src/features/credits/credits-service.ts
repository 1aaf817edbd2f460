import { ApiError, creditsFor } from '@platform/shared-types';
import type { Knex } from 'knex';
import { withRetry } from '../../db.ts';
import type { AccountsDal } from '../accounts/accounts-dal.ts';
import type { PricesService } from '../prices/prices-service.ts';
import type { CreditsDal } from './credits-dal.ts';
import { idempotent } from './idempotency.ts';

const DAY_MS = 86_400_000;

export interface AllocateInput {
  userId: string;
  credits: number;
  expiryDays?: number;
  notes?: string;
}

export interface DeductInput {
  userId: string;
  credits: number;
  reason?: string;
}

/** Balances, allocations and deductions; `db` runs the idempotent writes' transactions. */
export function creditsService(deps: { db: Knex; credits: CreditsDal; accounts: Pick<AccountsDal, 'findAccount'>; prices: Pick<PricesService, 'find'> }) {
  const { db, credits, accounts, prices } = deps;
  return {
    async balanceOf(userId: string) {
      const [balances, allocations] = await Promise.all([credits.balances([userId]), credits.liveAllocations(userId)]);
      const balance = balances.get(userId);
      if (!balance) throw new ApiError('NOT_FOUND', 'Unknown user');
      return {
        userId,
        available: balance.available,
        reserved: balance.reserved,
        allocations: allocations.map((a) => ({
          id: a.id,
          credits: a.credits,
          remaining: a.remaining,
          expiresAt: a.expiresAt,
          notes: a.notes,
          createdAt: a.createdAt,
        })),
      };
    },

    /** Allocates credits (201 {allocation, newBalance}); honours an Idempotency-Key per allocating actor. */
    async allocate(by: string, input: AllocateInput, idempotencyKey?: string) {
      return idempotent(db, { scope: 'credits:allocate', actorId: by, key: idempotencyKey, request: input, status: 201 }, async (trx) => {
        const expiresAt = input.expiryDays === undefined ? null : new Date(Date.now() + input.expiryDays * DAY_MS);
        const { allocation, available } = await credits.allocate(
          { userId: input.userId, credits: input.credits, expiresAt, notes: input.notes ?? null, allocatedBy: by },
          trx,
        );
        return { allocation, newBalance: available };
      });
    },

    /** the ledger of a user, newest first, one page of it; NOT_FOUND for a user accounting has never seen */
    async transactionsOf(userId: string, page: { page: number; limit: number; type?: string }) {
      if (!(await accounts.findAccount(userId))) throw new ApiError('NOT_FOUND', 'Unknown user');
      const { entries, total } = await credits.ledgerPage(userId, page);
      return { userId, page: page.page, limit: page.limit, total, transactions: entries };
    },

    /** what a call of `modelId` with these token counts costs at the price accounting holds */
    async priceOf(input: { modelId: string; inputTokens: number; outputTokens: number }) {
      const price = await prices.find(input.modelId);
      return { ...input, credits: creditsFor(price, input.inputTokens, input.outputTokens), inputPer1k: price.inputPer1k, outputPer1k: price.outputPer1k };
    },

    async deduct(by: string, input: DeductInput, idempotencyKey?: string) {
      return idempotent(db, { scope: 'credits:deduct', actorId: by, key: idempotencyKey, request: input, status: 200 }, async (trx) => {
        const { ledgerId, available } = await credits.deduct({ userId: input.userId, credits: input.credits, reference: input.reason ?? null, by }, trx);
        return { userId: input.userId, deducted: input.credits, transactionId: ledgerId, newBalance: available };
      });
    },
  };
}

export type CreditsService = ReturnType<typeof creditsService>;

/** Expires what the sweeper finds due: allocations past expiry (an `expiry` entry each) of up to `limit` users. */
export async function sweepAllocations(credits: CreditsDal, limit = 200): Promise<number> {
  const users = await credits.usersWithDueAllocations(limit);
  for (const userId of users) await withRetry(() => credits.expireDueAllocations(userId));
  return users.length;
}
