import type { Actor, ReservationResponse } from '@platform/shared-types';
import type { Knex } from 'knex';
import { AccountBatcher, type Outcome } from '../../account-queue.ts';
import { iso, num, withRetry } from '../../db.ts';
import * as dal from '../credits/credits-dal.ts';

export function reservationView(row: dal.Settled): ReservationResponse {
  const reserved = num(row.reserved);
  const charged = num(row.charged);
  return {
    reservationId: row.id,
    userId: row.user_id,
    status: row.status,
    reservedCredits: reserved,
    chargedCredits: charged,
    releasedCredits: row.status === 'open' ? 0 : reserved - charged,
    availableCredits: num(row.available_after),
    expiresAt: iso(row.expires_at) as string,
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
  return reservationView(await batcherFor(db).submit(actor.userId, { op: 'reserve', actor, input: { ...input, ttlSeconds } }));
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

/** Charges the actual cost (at most what was reserved) and releases the rest. Idempotent. */
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

/** Expires open reservations past their TTL and releases their credits; returns how many it expired. */
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
