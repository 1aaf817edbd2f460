import type { Actor } from '@platform/shared-types';
import type { Knex } from 'knex';
import { type Db, preparedRows } from '../../db.ts';
import type { ReservationStatus } from '../../domain.ts';

/** Streaming reservations: the money functions of migrations 003-005 (reserve, settle, renew, batch) and their reads. */

export interface ReservationRow {
  id: string;
  user_id: string;
  session_id: string;
  model_id: string;
  input_per_1k: number;
  output_per_1k: number;
  input_tokens: number;
  max_output_tokens: number;
  reserved: string;
  charged: string;
  /** the part of `charged` taken from the balance beyond the hold (usage above the reservation, or after an expiry) */
  beyond_hold: string;
  /** credits of usage that could not be charged: the balance ran out */
  shortfall: string;
  status: ReservationStatus;
  expires_at: Date;
  expired_at: Date | null;
  renewed_at: Date | null;
  created_at: Date;
  settled_at: Date | null;
}

/** A reservation with the user's available credits right after the change. */
export type Settled = ReservationRow & { available_after: string };

export interface ReserveInput {
  reservationId: string;
  sessionId: string;
  modelId: string;
  inputTokens: number;
  maxOutputTokens: number;
  ttlSeconds: number;
}

export interface SettleInput {
  reservationId: string;
  status: Exclude<ReservationStatus, 'open'>;
  inputTokens?: number;
  outputTokens: number;
  expectUserId?: string;
}

/** A reserve or settle call, as `batch` takes them. */
export type MoneyCall = { op: 'reserve'; actor: Actor; input: ReserveInput } | { op: 'settle'; input: SettleInput };

/** acc_reserve's arguments, in order (acc_reserve_key of migration 006 takes the same and the key's id). */
export function reserveArguments(actor: Actor, input: ReserveInput): unknown[] {
  return [
    input.reservationId,
    actor.userId,
    actor.username,
    actor.email,
    actor.role,
    input.sessionId,
    input.modelId,
    input.inputTokens,
    input.maxOutputTokens,
    input.ttlSeconds,
  ];
}

/** Every function runs on `db`, or inside `trx` when one is given. */
export function reservationsDal(db: Knex) {
  return {
    async reserve(actor: Actor, input: ReserveInput, trx?: Knex.Transaction): Promise<Settled> {
      const rows = await preparedRows<Settled>(
        trx ?? db,
        'acc_reserve',
        'SELECT (r.reservation).*, r.available_after FROM acc_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) r',
        reserveArguments(actor, input),
      );
      return rows[0] as Settled;
    },

    async settle(input: SettleInput, trx?: Knex.Transaction): Promise<Settled> {
      const rows = await preparedRows<Settled>(trx ?? db, 'acc_settle', 'SELECT (r.reservation).*, r.available_after FROM acc_settle($1, $2, $3, $4, $5) r', [
        input.reservationId,
        input.status,
        input.inputTokens ?? null,
        input.outputTokens,
        input.expectUserId ?? null,
      ]);
      return rows[0] as Settled;
    },

    /** Extends an open reservation's expiry by the TTL; a settled one is returned as is. */
    async renew(input: { reservationId: string; ttlSeconds: number; expectUserId?: string }, trx?: Knex.Transaction): Promise<Settled> {
      const rows = await preparedRows<Settled>(trx ?? db, 'acc_renew', 'SELECT (r.reservation).*, r.available_after FROM acc_renew($1, $2, $3) r', [
        input.reservationId,
        input.ttlSeconds,
        input.expectUserId ?? null,
      ]);
      return rows[0] as Settled;
    },

    /**
     * Runs several calls in order in one transaction through `acc_batch` (migrations/004): all apply, or none
     * (the error of the first call that failed is thrown). Answers are JSON: amounts as numbers, times as strings.
     */
    async batch(calls: MoneyCall[], trx?: Knex.Transaction): Promise<Settled[]> {
      const json = calls.map((call) =>
        call.op === 'reserve'
          ? { op: 'reserve', ...call.input, userId: call.actor.userId, username: call.actor.username, email: call.actor.email, role: call.actor.role }
          : { op: 'settle', ...call.input },
      );
      const rows = await preparedRows<{ result: Settled }>(trx ?? db, 'acc_batch', 'SELECT r AS result FROM acc_batch($1) r', [JSON.stringify(json)]);
      return rows.map((row) => row.result);
    },

    /** Open reservations of the given users, oldest first. */
    async openOf(userIds: string[], trx?: Knex.Transaction): Promise<ReservationRow[]> {
      if (userIds.length === 0) return [];
      return (trx ?? db)<ReservationRow>('reservations').where({ status: 'open' }).whereIn('user_id', userIds).orderBy('created_at');
    },

    /** Ids of open reservations past their expiry (their holder stopped renewing), soonest-expired first. */
    async overdue(limit: number, trx?: Knex.Transaction): Promise<string[]> {
      const on: Db = trx ?? db;
      const rows = await on('reservations').select('id').where({ status: 'open' }).andWhere('expires_at', '<', on.fn.now()).orderBy('expires_at').limit(limit);
      return rows.map((row: { id: string }) => row.id);
    },
  };
}

export type ReservationsDal = ReturnType<typeof reservationsDal>;
