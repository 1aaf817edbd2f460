import type { Actor, ReservationResponse } from '@platform/shared-types';
import type { Knex } from 'knex';
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
  return reservationView(await withRetry(() => dal.reserve(db, actor, { ...input, ttlSeconds })));
}

/** Charges the actual cost (at most what was reserved) and releases the rest. Idempotent. */
export async function finalizeStream(
  db: Knex,
  input: { reservationId: string; inputTokens: number; outputTokens: number },
  expectUserId?: string,
): Promise<ReservationResponse> {
  return reservationView(await withRetry(() => dal.settle(db, { ...input, status: 'finalized', expectUserId })));
}

/** Charges what was produced before the stream stopped and releases the rest. Idempotent. */
export async function abortStream(
  db: Knex,
  input: { reservationId: string; inputTokens?: number; outputTokens: number },
  expectUserId?: string,
): Promise<ReservationResponse> {
  return reservationView(await withRetry(() => dal.settle(db, { ...input, status: 'aborted', expectUserId })));
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
