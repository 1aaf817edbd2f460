import { type Db, num } from '../../db.ts';

/**
 * Checks the money rules for one user (DESIGN section 8) and returns what is violated (empty when sound):
 * the ledger sums to the available balance and its last entry agrees; allocation remainders sum to it too;
 * what was allocated minus what is left or held equals what the ledger says was spent or expired; the
 * reserved balance equals the open reservations and their holds; nothing is negative.
 * Read in one REPEATABLE READ snapshot so a concurrent change cannot make it disagree with itself.
 */
export async function invariantViolations(db: Db, userId: string): Promise<string[]> {
  const check = async (trx: Db) => {
    const account = await trx('accounts').where({ user_id: userId }).first();
    if (!account) return [`no account ${userId}`];
    const available = num(account.available);
    const reserved = num(account.reserved);
    const ledger = await trx('ledger')
      .where({ user_id: userId })
      .select(
        trx.raw('coalesce(sum(amount), 0) AS total'),
        trx.raw("coalesce(sum(amount) FILTER (WHERE type = 'allocation'), 0) AS allocated"),
        trx.raw("coalesce(sum(amount) FILTER (WHERE type IN ('deduction', 'charge', 'expiry', 'refund', 'adjustment')), 0) AS consumed"),
        trx.raw('min(balance_after) AS min_after'),
      )
      .first();
    const last = await trx('ledger').where({ user_id: userId }).orderBy('id', 'desc').first('balance_after');
    const allocations = await trx('allocations')
      .where({ user_id: userId })
      .select(
        trx.raw('coalesce(sum(credits), 0) AS credits'),
        trx.raw('coalesce(sum(remaining), 0) AS remaining'),
        trx.raw('count(*) FILTER (WHERE remaining < 0 OR remaining > credits) AS bad'),
      )
      .first();
    const open = await trx('reservations').where({ user_id: userId, status: 'open' }).select(trx.raw('coalesce(sum(reserved), 0) AS reserved')).first();
    const holds = await trx('reservation_holds as h')
      .join('reservations as r', 'r.id', 'h.reservation_id')
      .where('r.user_id', userId)
      .select(trx.raw('coalesce(sum(h.amount), 0) AS held'), trx.raw("count(*) FILTER (WHERE r.status <> 'open') AS stale"))
      .first();
    const overcharged = await trx('reservations')
      .where({ user_id: userId })
      .andWhereRaw('charged - beyond_hold > reserved OR charged < 0 OR beyond_hold < 0 OR beyond_hold > charged OR shortfall < 0')
      .count<{ count: string }[]>({ count: '*' });

    const problems: string[] = [];
    const expect = (ok: boolean, message: string) => {
      if (!ok) problems.push(message);
    };
    expect(available >= 0 && reserved >= 0, `negative balance: available ${available}, reserved ${reserved}`);
    expect(num(ledger.total) === available, `ledger sums to ${ledger.total}, available is ${available}`);
    expect(
      last === undefined ? available === 0 : num(last.balance_after) === available,
      `last ledger balance_after ${last?.balance_after} != available ${available}`,
    );
    expect(ledger.min_after === null || num(ledger.min_after) >= 0, 'a ledger entry left the balance below zero');
    expect(num(allocations.remaining) === available, `allocation remainders sum to ${allocations.remaining}, available is ${available}`);
    expect(num(allocations.bad) === 0, 'an allocation remainder is outside 0..credits');
    expect(num(allocations.credits) === num(ledger.allocated), `allocated ${allocations.credits} but the ledger records ${ledger.allocated}`);
    expect(
      num(allocations.credits) - num(allocations.remaining) - num(holds.held) === -num(ledger.consumed),
      `allocations lost ${num(allocations.credits) - num(allocations.remaining) - num(holds.held)} but the ledger consumed ${-num(ledger.consumed)}`,
    );
    expect(num(open.reserved) === reserved, `open reservations hold ${open.reserved}, reserved is ${reserved}`);
    expect(num(holds.held) === reserved, `holds sum to ${holds.held}, reserved is ${reserved}`);
    expect(num(holds.stale) === 0, 'a settled reservation still holds credits');
    expect(num(overcharged[0]?.count) === 0, 'a reservation took more from its hold than it reserved');
    return problems;
  };
  if ('isTransaction' in db && db.isTransaction) return check(db);
  return (db as import('knex').Knex).transaction(check, { isolationLevel: 'repeatable read', readOnly: true });
}

/** Throws when the user's money rules are violated (tests and the bench call it after every scenario). */
export async function assertInvariant(db: Db, userId: string): Promise<void> {
  const problems = await invariantViolations(db, userId);
  if (problems.length > 0) throw new Error(`invariant violated for ${userId}: ${problems.join('; ')}`);
}
