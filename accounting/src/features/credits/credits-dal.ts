import type { Actor } from '@platform/shared-types';
import { type Db, iso, num, preparedRows } from '../../db.ts';

/** Data access for the money functions of migrations/003 and the read side of credits. */

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

export async function allocate(
  db: Db,
  input: { userId: string; credits: number; expiresAt: Date | null; notes: string | null; allocatedBy: string },
): Promise<{ allocation: AllocationView; available: number }> {
  const { rows } = await db.raw('SELECT allocation_id, available FROM acc_allocate(?, ?, ?, ?, ?)', [
    input.userId,
    input.credits,
    input.expiresAt,
    input.notes,
    input.allocatedBy,
  ]);
  const row = await db<AllocationRow>('allocations').where({ id: rows[0].allocation_id }).first();
  return { allocation: allocationView(row as AllocationRow), available: num(rows[0].available) };
}

export async function deduct(
  db: Db,
  input: { userId: string; credits: number; reference: string | null; by: string },
): Promise<{ ledgerId: string; available: number }> {
  const { rows } = await db.raw('SELECT ledger_id, available FROM acc_deduct(?, ?, ?, ?)', [input.userId, input.credits, input.reference, input.by]);
  return { ledgerId: String(rows[0].ledger_id), available: num(rows[0].available) };
}

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
  status: 'open' | 'finalized' | 'aborted' | 'expired';
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
  status: 'finalized' | 'aborted' | 'expired';
  inputTokens?: number;
  outputTokens: number;
  expectUserId?: string;
}

export async function reserve(db: Db, actor: Actor, input: ReserveInput): Promise<Settled> {
  const rows = await preparedRows<Settled>(
    db,
    'acc_reserve',
    'SELECT (r.reservation).*, r.available_after FROM acc_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) r',
    [
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
    ],
  );
  return rows[0] as Settled;
}

export async function settle(db: Db, input: SettleInput): Promise<Settled> {
  const rows = await preparedRows<Settled>(db, 'acc_settle', 'SELECT (r.reservation).*, r.available_after FROM acc_settle($1, $2, $3, $4, $5) r', [
    input.reservationId,
    input.status,
    input.inputTokens ?? null,
    input.outputTokens,
    input.expectUserId ?? null,
  ]);
  return rows[0] as Settled;
}

/** Extends an open reservation's expiry by the TTL; a settled one is returned as is. */
export async function renew(db: Db, input: { reservationId: string; ttlSeconds: number; expectUserId?: string }): Promise<Settled> {
  const rows = await preparedRows<Settled>(db, 'acc_renew', 'SELECT (r.reservation).*, r.available_after FROM acc_renew($1, $2, $3) r', [
    input.reservationId,
    input.ttlSeconds,
    input.expectUserId ?? null,
  ]);
  return rows[0] as Settled;
}

/** A reserve or settle call, as `batch` takes them. */
export type MoneyCall = { op: 'reserve'; actor: Actor; input: ReserveInput } | { op: 'settle'; input: SettleInput };

/**
 * Runs several calls in order in one transaction through `acc_batch` (migrations/004): all apply, or none
 * (the error of the first call that failed is thrown). Answers are JSON: amounts as numbers, times as strings.
 */
export async function batch(db: Db, calls: MoneyCall[]): Promise<Settled[]> {
  const json = calls.map((call) =>
    call.op === 'reserve'
      ? { op: 'reserve', ...call.input, userId: call.actor.userId, username: call.actor.username, email: call.actor.email, role: call.actor.role }
      : { op: 'settle', ...call.input },
  );
  const rows = await preparedRows<{ result: Settled }>(db, 'acc_batch', 'SELECT r AS result FROM acc_batch($1) r', [JSON.stringify(json)]);
  return rows.map((row) => row.result);
}

export async function findReservation(db: Db, reservationId: string): Promise<ReservationRow | undefined> {
  return db<ReservationRow>('reservations').where({ id: reservationId }).first();
}

export async function openReservations(db: Db, userIds: string[]): Promise<ReservationRow[]> {
  if (userIds.length === 0) return [];
  return db<ReservationRow>('reservations').where({ status: 'open' }).whereIn('user_id', userIds).orderBy('created_at');
}

/** Live balances: expired allocations stop counting at once, even before the sweeper writes their expiry. */
export async function balances(db: Db, userIds: string[]): Promise<Map<string, { available: number; reserved: number }>> {
  if (userIds.length === 0) return new Map();
  const rows = await db('accounts as a')
    .leftJoin('allocations as al', function liveOnly() {
      this.on('al.user_id', '=', 'a.user_id').andOn('al.remaining', '>', db.raw('0'));
    })
    .whereIn('a.user_id', userIds)
    .groupBy('a.user_id', 'a.reserved')
    .select('a.user_id', 'a.reserved', db.raw('coalesce(sum(al.remaining) FILTER (WHERE al.expires_at IS NULL OR al.expires_at > now()), 0) AS available'));
  return new Map(
    rows.map((row: { user_id: string; available: string; reserved: string }) => [row.user_id, { available: num(row.available), reserved: num(row.reserved) }]),
  );
}

/** Allocations that still hold credits and have not expired, soonest-expiring first (the spend order). */
export async function liveAllocations(db: Db, userId: string): Promise<AllocationView[]> {
  const rows = await db<AllocationRow>('allocations')
    .where({ user_id: userId })
    .andWhere('remaining', '>', 0)
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()))
    .orderByRaw('expires_at NULLS LAST, id');
  return rows.map(allocationView);
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

export async function ledgerPage(
  db: Db,
  userId: string,
  options: { page: number; limit: number; type?: string },
): Promise<{ entries: LedgerEntry[]; total: number }> {
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
}

/** Users with allocations past expiry that still hold credits (for the sweeper). */
export async function usersWithDueAllocations(db: Db, limit: number): Promise<string[]> {
  const rows = await db('allocations').distinct('user_id').where('remaining', '>', 0).andWhere('expires_at', '<=', db.fn.now()).limit(limit);
  return rows.map((row: { user_id: string }) => row.user_id);
}

/** Locks the account and writes the expiry of its due allocations. */
export async function expireDueAllocations(db: Db, userId: string): Promise<void> {
  await db.raw('SELECT acc_lock(?)', [userId]);
}

export async function overdueReservations(db: Db, limit: number): Promise<string[]> {
  const rows = await db('reservations').select('id').where({ status: 'open' }).andWhere('expires_at', '<', db.fn.now()).orderBy('expires_at').limit(limit);
  return rows.map((row: { id: string }) => row.id);
}
