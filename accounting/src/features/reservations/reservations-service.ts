import type { Actor, ReservationResponse } from '@platform/shared-types';
import type { Knex } from 'knex';
import { AccountBatcher, type Outcome } from '../../account-queue.ts';
import { iso, num, withRetry } from '../../db.ts';
import * as dal from '../credits/credits-dal.ts';

export function reservationView(row: dal.Settled, ttlSeconds?: number): ReservationResponse {
  const reserved = num(row.reserved);
  const charged = num(row.charged);
  // what went back to the balance: the hold less the part of the charge it paid (nothing came back after an expiry)
  const fromHold = charged - num(row.beyond_hold ?? 0);
  const released = row.status === 'open' ? 0 : row.expired_at && row.status !== 'expired' ? 0 : reserved - fromHold;
  return {
    reservationId: row.id,
    userId: row.user_id,
    status: row.status,
    reservedCredits: reserved,
    chargedCredits: charged,
    releasedCredits: released,
    availableCredits: num(row.available_after),
    expiresAt: iso(row.expires_at) as string,
    prices: { inputPer1k: row.input_per_1k, outputPer1k: row.output_per_1k },
    shortfallCredits: num(row.shortfall ?? 0),
    ...(ttlSeconds ? { ttlSeconds } : {}),
  };
}

export interface InitializeInput {
  reservationId: string;
  sessionId: string;
  modelId: string;
  inputTokens: number;
  maxOutputTokens: number;
}

/** Reserves the worst case of a stream for the acting user; INSUFFICIENT_CREDITS when short. Idempotent. */
export async function initializeStream(db: Knex, actor: Actor, input: InitializeInput, ttlSeconds: number): Promise<ReservationResponse> {
  return reservationView(await batcherFor(db).submit(actor.userId, { op: 'reserve', actor, input: { ...input, ttlSeconds } }), ttlSeconds);
}

/** Keeps a running stream's reservation alive for another TTL. Idempotent; a settled reservation is answered as is. */
export async function renewStream(db: Knex, input: { reservationId: string }, ttlSeconds: number, expectUserId?: string): Promise<ReservationResponse> {
  return reservationView(await withRetry(() => dal.renew(db, { reservationId: input.reservationId, ttlSeconds, expectUserId })), ttlSeconds);
}

/** Settles in the owner's batches when the caller names the owner (a user token); otherwise on its own. */
function settleQueued(db: Knex, input: dal.SettleInput): Promise<dal.Settled> {
  return input.expectUserId ? batcherFor(db).submit(input.expectUserId, { op: 'settle', input }) : runOne(db, { op: 'settle', input });
}

function runOne(db: Knex, call: dal.MoneyCall): Promise<dal.Settled> {
  return withRetry(() => (call.op === 'reserve' ? dal.reserve(db, call.actor, call.input) : dal.settle(db, call.input)));
}

async function outcomeOf(work: () => Promise<dal.Settled>): Promise<Outcome<dal.Settled>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * One call alone; several in one `acc_batch` transaction. When the batch fails (one call is refused, e.g. short of
 * credits, or a deadlock) nothing of it applied, and each call runs on its own to get its own answer.
 */
export async function runCalls(db: Knex, calls: dal.MoneyCall[]): Promise<Outcome<dal.Settled>[]> {
  if (calls.length > 1) {
    try {
      return (await dal.batch(db, calls)).map((value) => ({ ok: true, value }));
    } catch {
      // fall through: the whole batch rolled back
    }
  }
  const outcomes: Outcome<dal.Settled>[] = [];
  for (const call of calls) outcomes.push(await outcomeOf(() => runOne(db, call)));
  return outcomes;
}

const batchers = new WeakMap<Knex, AccountBatcher<dal.MoneyCall, dal.Settled>>();

/** Reserve and settle calls of one account, batched per database handle (see AccountBatcher). */
function batcherFor(db: Knex): AccountBatcher<dal.MoneyCall, dal.Settled> {
  let batcher = batchers.get(db);
  if (!batcher) {
    batcher = new AccountBatcher((calls) => runCalls(db, calls));
    batchers.set(db, batcher);
  }
  return batcher;
}

/** Charges the actual cost at the reservation's prices (beyond the hold: from the balance, up to what is left) and releases the rest. Idempotent. */
export async function finalizeStream(
  db: Knex,
  input: { reservationId: string; inputTokens: number; outputTokens: number },
  expectUserId?: string,
): Promise<ReservationResponse> {
  return reservationView(await settleQueued(db, { ...input, status: 'finalized', expectUserId }));
}

/** Charges what was produced before the stream stopped and releases the rest. Idempotent. */
export async function abortStream(
  db: Knex,
  input: { reservationId: string; inputTokens?: number; outputTokens: number },
  expectUserId?: string,
): Promise<ReservationResponse> {
  return reservationView(await settleQueued(db, { ...input, status: 'aborted', expectUserId }));
}

/** Expires open reservations whose holder stopped renewing and releases their holds; returns how many it expired. */
export async function sweepReservations(db: Knex, batch = 200): Promise<number> {
  let expired = 0;
  for (let round = 0; round < 50; round++) {
    const ids = await dal.overdueReservations(db, batch);
    for (const reservationId of ids) {
      const row = await withRetry(() => dal.settle(db, { reservationId, status: 'expired', outputTokens: 0 }));
      if (row.status === 'expired') expired++;
    }
    if (ids.length < batch) break;
  }
  return expired;
}

export function activeView(row: dal.ReservationRow) {
  return {
    reservationId: row.id,
    userId: row.user_id,
    sessionId: row.session_id,
    modelId: row.model_id,
    reservedCredits: num(row.reserved),
    startedAt: iso(row.created_at) as string,
  };
}
