import { ApiError } from '@platform/shared-types';
import type { Knex } from 'knex';
import { withRetry } from '../../db.ts';
import * as dal from './credits-dal.ts';
import { idempotent } from './idempotency.ts';

const DAY_MS = 86_400_000;

export async function balanceOf(db: Knex, userId: string) {
  const [balances, allocations] = await Promise.all([dal.balances(db, [userId]), dal.liveAllocations(db, userId)]);
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
}

export interface AllocateInput {
  userId: string;
  credits: number;
  expiryDays?: number;
  notes?: string;
}

/** Allocates credits (201 {allocation, newBalance}); honours an Idempotency-Key per allocating actor. */
export async function allocateCredits(db: Knex, by: string, input: AllocateInput, idempotencyKey?: string) {
  return idempotent(db, { scope: 'credits:allocate', actorId: by, key: idempotencyKey, request: input, status: 201 }, async (trx) => {
    const expiresAt = input.expiryDays === undefined ? null : new Date(Date.now() + input.expiryDays * DAY_MS);
    const { allocation, available } = await dal.allocate(trx, {
      userId: input.userId,
      credits: input.credits,
      expiresAt,
      notes: input.notes ?? null,
      allocatedBy: by,
    });
    return { allocation, newBalance: available };
  });
}

export interface DeductInput {
  userId: string;
  credits: number;
  reason?: string;
}

export async function deductCredits(db: Knex, by: string, input: DeductInput, idempotencyKey?: string) {
  return idempotent(db, { scope: 'credits:deduct', actorId: by, key: idempotencyKey, request: input, status: 200 }, async (trx) => {
    const { ledgerId, available } = await dal.deduct(trx, { userId: input.userId, credits: input.credits, reference: input.reason ?? null, by });
    return { userId: input.userId, deducted: input.credits, transactionId: ledgerId, newBalance: available };
  });
}

/** Expires what the sweeper finds due: allocations past expiry (an `expiry` entry each) of up to `limit` users. */
export async function sweepAllocations(db: Knex, limit = 200): Promise<number> {
  const users = await dal.usersWithDueAllocations(db, limit);
  for (const userId of users) await withRetry(() => dal.expireDueAllocations(db, userId));
  return users.length;
}
