import type { StoredReply } from '@platform/shared-types';
import type { Knex } from 'knex';
import { num } from '../../db.ts';
import { invariantViolations } from '../credits/invariant.ts';
import type { StoredReplies } from './chat-replies.ts';

export interface Difference {
  kind: 'ledger' | 'reservation' | 'reply';
  userId: string;
  reservationId?: string;
  /** the chat message a `reply` difference is about */
  messageId?: string;
  problem: string;
}

/** A reservation of the range with its usage row and the count of its charge entries. */
interface ReservationRow {
  id: string;
  user_id: string;
  status: 'open' | 'finalized' | 'aborted' | 'expired';
  charged: string;
  shortfall: string;
  input_per_1k: number;
  output_per_1k: number;
  input_tokens: number | null;
  output_tokens: number | null;
  usage_credits: string | null;
  overdue: boolean;
  charges: string;
}

/** How each reply status is settled by chat: a finished reply is finalized, a stopped or failed one aborted. */
const SETTLED_AS: Record<StoredReply['status'], ReservationRow['status']> = { complete: 'finalized', interrupted: 'aborted', error: 'aborted' };

/**
 * Proves, for reservations made in [from, to) and the accounts they or the ledger entries of the range belong to, what
 * DESIGN 8 promises: every account's ledger sums to its balance (the invariant checker); every settled reservation has
 * at most one charge, exactly one usage row when it was finalized or aborted, and its charge plus recorded shortfall
 * equals the cost of that usage at the reservation's prices; no reservation is still open long after its expiry.
 * With `replies` (chat's stored replies) it also pairs replies and reservations: every stored reply has exactly one
 * reservation, settled as its status says, with the reply's usage and credits; every finalized reservation has a
 * stored reply (an aborted one may have none: chat died mid-stream and its checkpoint was charged, or the reply was
 * never stored). Returns the differences (empty when everything reconciles).
 */
export async function reconcile(db: Knex, from: Date, to: Date, options: { sweepGraceSeconds?: number; replies?: StoredReplies } = {}): Promise<Difference[]> {
  const rows = await reservationsOf(db, from, to, options.sweepGraceSeconds ?? 120);
  const differences = rows.flatMap(reservationDifferences);
  // a reply is stored when its stream ends, after its reservation was made: look from `from` up to now
  if (options.replies) differences.push(...(await replyDifferences(db, rows, await options.replies({ from, to: new Date(Date.now() + 1_000) }), to)));
  const ledgerUsers = await db('ledger').distinct('user_id').where('created_at', '>=', from).andWhere('created_at', '<', to);
  const users = [...new Set([...rows.map((row) => row.user_id), ...ledgerUsers.map((row: { user_id: string }) => row.user_id)])];
  for (const userId of users) {
    for (const problem of await invariantViolations(db, userId)) differences.push({ kind: 'ledger', userId, problem });
  }
  return differences;
}

async function reservationsOf(db: Knex, from: Date, to: Date, sweepGraceSeconds: number): Promise<ReservationRow[]> {
  return db('reservations as r')
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
      db.raw('r.expires_at < now() - make_interval(secs => ?) AS overdue', [sweepGraceSeconds]),
      db.raw("(SELECT count(*) FROM ledger l WHERE l.reservation_id = r.id AND l.type = 'charge') AS charges"),
    );
}

/** Accounting's own side of one reservation: charge entries, usage row, cost at its prices. */
function reservationDifferences(row: ReservationRow): Difference[] {
  const found: string[] = [];
  const charged = num(row.charged);
  const charges = num(row.charges);
  if (charges > 1) found.push(`${charges} charge entries in the ledger`);
  if (charges === 0 && charged > 0) found.push(`charged ${charged} without a charge entry`);
  if (row.status === 'open') {
    if (row.overdue) found.push('still open long after its expiry');
  } else if (row.status === 'expired') {
    if (charged !== 0) found.push(`expired but charged ${charged}`);
  } else if (row.input_tokens === null || row.output_tokens === null) {
    found.push(`${row.status} without a usage row`);
  } else {
    const cost = Math.ceil((row.input_tokens * row.input_per_1k) / 1000) + Math.ceil((row.output_tokens * row.output_per_1k) / 1000);
    if (charged + num(row.shortfall) !== cost) found.push(`charged ${charged} + shortfall ${num(row.shortfall)} != cost ${cost} of its usage`);
    if (num(row.usage_credits) !== charged) found.push(`usage row says ${num(row.usage_credits)} credits, the reservation ${charged}`);
  }
  return found.map((problem) => ({ kind: 'reservation', userId: row.user_id, reservationId: row.id, problem }));
}

/** Chat's side: the stored replies against the reservations of the range (and replies whose reservation is missing). */
async function replyDifferences(db: Knex, rows: ReservationRow[], replies: StoredReply[], to: Date): Promise<Difference[]> {
  const differences: Difference[] = [];
  const byReservation = Map.groupBy(replies, (reply) => reply.reservationId);
  for (const row of rows) {
    const paired = byReservation.get(row.id) ?? [];
    const add = (problem: string, reply?: StoredReply) =>
      differences.push({ kind: 'reply', userId: row.user_id, reservationId: row.id, messageId: reply?.messageId, problem });
    if (paired.length > 1) add(`${paired.length} stored replies for one reservation`);
    const reply = paired[0];
    if (!reply) {
      if (row.status === 'finalized') add(`charged ${num(row.charged)} as a finished reply, but chat stored no reply`);
      continue;
    }
    for (const problem of pairDifferences(row, reply)) add(problem, reply);
  }
  // replies of the range whose reservation was not made in it: fine when it was made earlier, a difference when none exists
  const known = new Set(rows.map((row) => row.id));
  const unpaired = replies.filter((reply) => !known.has(reply.reservationId) && new Date(reply.createdAt) < to);
  const uuids = unpaired.map((reply) => reply.reservationId).filter((id) => /^[0-9a-f-]{36}$/i.test(id));
  const existing = new Set(uuids.length === 0 ? [] : (await db('reservations').whereIn('id', uuids).pluck('id')).map(String));
  for (const reply of unpaired) {
    if (existing.has(reply.reservationId)) continue;
    differences.push({
      kind: 'reply',
      userId: reply.userId,
      reservationId: reply.reservationId,
      messageId: reply.messageId,
      problem: 'stored reply has no reservation',
    });
  }
  return differences;
}

/** One reply against its reservation: settled as its status says, same usage, same credits. */
function pairDifferences(row: ReservationRow, reply: StoredReply): string[] {
  const found: string[] = [];
  if (row.status === 'open') return ['stored reply, but its reservation is still open (the charge has not landed)'];
  if (row.status === 'expired') return ['stored reply, but its reservation expired uncharged'];
  if (row.status !== SETTLED_AS[reply.status]) found.push(`reply is ${reply.status} but its reservation was ${row.status}`);
  const usage = reply.usage ?? { inputTokens: 0, outputTokens: 0 };
  if (row.input_tokens !== null && (usage.inputTokens !== row.input_tokens || usage.outputTokens !== row.output_tokens)) {
    found.push(`reply usage ${usage.inputTokens}/${usage.outputTokens} tokens, charged usage ${row.input_tokens}/${row.output_tokens}`);
  }
  if (reply.chargePending) found.push(`chat still shows the charge as pending; accounting charged ${num(row.charged)}`);
  else if (reply.credits !== num(row.charged)) found.push(`reply shows ${reply.credits ?? 'no'} credits, accounting charged ${num(row.charged)}`);
  return found;
}
