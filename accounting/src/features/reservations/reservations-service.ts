import type { Actor, ReservationResponse } from '@platform/shared-types';
import { AccountBatcher, type Outcome } from '../../account-queue.ts';
import { iso, num, withRetry } from '../../db.ts';
import { accountingMetrics, timedLedgerCall } from '../../metrics.ts';
import type { MoneyCall, ReservationRow, ReservationsDal, Settled, SettleInput } from './reservations-dal.ts';

export function reservationView(row: Settled, ttlSeconds?: number): ReservationResponse {
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

/** Settlement metrics: by status, credits charged, and what the balance could not cover. */
function countSettled(view: ReservationResponse): ReservationResponse {
  accountingMetrics.reservationsSettled.inc({ status: view.status });
  accountingMetrics.creditsCharged.inc(view.chargedCredits);
  if ((view.shortfallCredits ?? 0) > 0) {
    accountingMetrics.shortfalls.inc();
    accountingMetrics.shortfallCredits.inc(view.shortfallCredits ?? 0);
  }
  return view;
}

async function outcomeOf(work: () => Promise<Settled>): Promise<Outcome<Settled>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Streaming reservations (DESIGN 8): reserve the worst case, keep it alive, charge the usage and release the rest.
 * Reserve and settle calls of one account are batched into one `acc_batch` transaction (see AccountBatcher).
 */
export function reservationsService(deps: { reservations: ReservationsDal; ttlSeconds: number }) {
  const { reservations, ttlSeconds } = deps;

  function runOne(call: MoneyCall): Promise<Settled> {
    return timedLedgerCall('single', () =>
      withRetry(() => (call.op === 'reserve' ? reservations.reserve(call.actor, call.input) : reservations.settle(call.input))),
    );
  }

  /**
   * One call alone; several in one `acc_batch` transaction. When the batch fails (one call is refused, e.g. short of
   * credits, or a deadlock) nothing of it applied, and each call runs on its own to get its own answer.
   */
  async function runCalls(calls: MoneyCall[]): Promise<Outcome<Settled>[]> {
    if (calls.length > 1) {
      try {
        return (await timedLedgerCall('batch', () => reservations.batch(calls))).map((value) => ({ ok: true, value }));
      } catch {
        // fall through: the whole batch rolled back
      }
    }
    const outcomes: Outcome<Settled>[] = [];
    for (const call of calls) outcomes.push(await outcomeOf(() => runOne(call)));
    return outcomes;
  }

  const batcher = new AccountBatcher<MoneyCall, Settled>(runCalls);

  /** Settles in the owner's batches when the caller names the owner (a user token); otherwise on its own. */
  function settleQueued(input: SettleInput): Promise<Settled> {
    return input.expectUserId ? batcher.submit(input.expectUserId, { op: 'settle', input }) : runOne({ op: 'settle', input });
  }

  return {
    runCalls,

    /** Reserves the worst case of a stream for the acting user; INSUFFICIENT_CREDITS when short. Idempotent. */
    async initialize(actor: Actor, input: InitializeInput): Promise<ReservationResponse> {
      const view = reservationView(await batcher.submit(actor.userId, { op: 'reserve', actor, input: { ...input, ttlSeconds } }), ttlSeconds);
      accountingMetrics.reservationsOpened.inc();
      return view;
    },

    /** Keeps a running stream's reservation alive for another TTL. Idempotent; a settled reservation is answered as is. */
    async renew(input: { reservationId: string }, expectUserId?: string): Promise<ReservationResponse> {
      return reservationView(await withRetry(() => reservations.renew({ reservationId: input.reservationId, ttlSeconds, expectUserId })), ttlSeconds);
    },

    /** Charges the actual cost at the reservation's prices (beyond the hold: from the balance, up to what is left) and releases the rest. Idempotent. */
    async finalize(input: { reservationId: string; inputTokens: number; outputTokens: number }, expectUserId?: string): Promise<ReservationResponse> {
      return countSettled(reservationView(await settleQueued({ ...input, status: 'finalized', expectUserId })));
    },

    /** Charges what was produced before the stream stopped and releases the rest. Idempotent. */
    async abort(input: { reservationId: string; inputTokens?: number; outputTokens: number }, expectUserId?: string): Promise<ReservationResponse> {
      return countSettled(reservationView(await settleQueued({ ...input, status: 'aborted', expectUserId })));
    },

    /** The open reservations of the given users. */
    async active(userIds: string[]) {
      return (await reservations.openOf(userIds)).map(activeView);
    },
  };
}

export type ReservationsService = ReturnType<typeof reservationsService>;

/** Expires open reservations whose holder stopped renewing and releases their holds; returns how many it expired. */
export async function expireAbandonedReservations(reservations: ReservationsDal, batch = 200): Promise<number> {
  let expired = 0;
  for (let round = 0; round < 50; round++) {
    const ids = await reservations.overdue(batch);
    for (const reservationId of ids) {
      const row = await withRetry(() => reservations.settle({ reservationId, status: 'expired', outputTokens: 0 }));
      if (row.status === 'expired') {
        expired++;
        accountingMetrics.reservationsExpired.inc();
      }
    }
    if (ids.length < batch) break;
  }
  return expired;
}

export function activeView(row: ReservationRow) {
  return {
    reservationId: row.id,
    userId: row.user_id,
    sessionId: row.session_id,
    modelId: row.model_id,
    reservedCredits: num(row.reserved),
    startedAt: iso(row.created_at) as string,
  };
}
