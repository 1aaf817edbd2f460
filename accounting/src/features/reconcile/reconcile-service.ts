import type { Knex } from 'knex';
import { num } from '../../db.ts';
import { invariantViolations } from '../credits/invariant.ts';

export interface Difference {
  kind: 'ledger' | 'reservation';
  userId: string;
  reservationId?: string;
  problem: string;
}

/**
 * Proves, for reservations made in [from, to) and the accounts they or the ledger entries of the range belong to, what DESIGN 8 promises: every
 * account's ledger sums to its balance (the invariant checker); every settled reservation has at most one charge,
 * exactly one usage row when it was finalized or aborted, and its charge plus recorded shortfall equals the cost of
 * that usage at the reservation's prices; no reservation is still open long after its expiry (the sweeper runs).
 * Returns the differences (empty when everything reconciles). Accounting's side only: chat's stored replies are not
 * compared here.
 */
export async function reconcile(db: Knex, from: Date, to: Date, options: { sweepGraceSeconds?: number } = {}): Promise<Difference[]> {
  const differences: Difference[] = [];
  const rows = await db('reservations as r')
    .leftJoin('usage as u', 'u.reservation_id', 'r.id')
    .where('r.created_at', '>=', from)
    .andWhere('r.created_at', '<', to)
    .select(
      'r.id',
      'r.user_id',
      'r.status',
      'r.charged',
      'r.shortfall',
      'r.input_per_1k',
      'r.output_per_1k',
      'u.input_tokens',
      'u.output_tokens',
      'u.credits as usage_credits',
      db.raw('r.expires_at < now() - make_interval(secs => ?) AS overdue', [options.sweepGraceSeconds ?? 120]),
      db.raw("(SELECT count(*) FROM ledger l WHERE l.reservation_id = r.id AND l.type = 'charge') AS charges"),
    );
  for (const row of rows) {
    const add = (problem: string) => differences.push({ kind: 'reservation', userId: row.user_id, reservationId: row.id, problem });
    const charged = num(row.charged);
    const charges = num(row.charges);
    if (charges > 1) add(`${charges} charge entries in the ledger`);
    if (charges === 0 && charged > 0) add(`charged ${charged} without a charge entry`);
    if (row.status === 'open') {
      if (row.overdue) add('still open long after its expiry');
      continue;
    }
    if (row.status === 'expired') {
      if (charged !== 0) add(`expired but charged ${charged}`);
      continue;
    }
    if (row.input_tokens === null) {
      add(`${row.status} without a usage row`);
      continue;
    }
    const cost = Math.ceil((row.input_tokens * row.input_per_1k) / 1000) + Math.ceil((row.output_tokens * row.output_per_1k) / 1000);
    if (charged + num(row.shortfall) !== cost) add(`charged ${charged} + shortfall ${num(row.shortfall)} != cost ${cost} of its usage`);
    if (num(row.usage_credits) !== charged) add(`usage row says ${num(row.usage_credits)} credits, the reservation ${charged}`);
  }
  const ledgerUsers = await db('ledger').distinct('user_id').where('created_at', '>=', from).andWhere('created_at', '<', to);
  const users = [...new Set([...rows.map((row) => row.user_id as string), ...ledgerUsers.map((row: { user_id: string }) => row.user_id)])];
  for (const userId of users) {
    for (const problem of await invariantViolations(db, userId)) differences.push({ kind: 'ledger', userId, problem });
  }
  return differences;
}
