import { randomUUID } from 'node:crypto';
import { ApiError } from '@platform/shared-types';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { assertInvariant } from '../../src/features/credits/invariant.ts';
import { type ReservationsDal, reservationsDal } from '../../src/features/reservations/reservations-dal.ts';
import { type ReservationsService, reservationsService } from '../../src/features/reservations/reservations-service.ts';
import { type Harness, startAccounting } from '../helpers.ts';

// claude-3-7-sonnet: 3/1k input, 15/1k output -> 1000 + 1000 tokens reserve 18 credits
const stream = (reservationId = randomUUID()) => ({ reservationId, sessionId: 's', modelId: 'claude-3-7-sonnet', inputTokens: 1000, maxOutputTokens: 1000 });

describe('accounting batched reserve/settle of one account (real PostgreSQL)', () => {
  let h: Harness;
  let reservations: ReservationsDal;
  let streams: ReservationsService;
  const admin = testActor('admin');

  before(async () => {
    h = await startAccounting({ SWEEP_INTERVAL_MS: '100000' });
    reservations = reservationsDal(h.db);
    streams = reservationsService({ reservations, ttlSeconds: 600 });
  });
  after(async () => {
    await h.stop();
  });

  async function userWith(credits: number) {
    const user = testActor('enduser');
    await h.db('accounts').insert({ user_id: user.userId, username: user.username, email: user.email, role: user.role });
    await h.db.raw('SELECT acc_allocate(?, ?, ?, ?, ?)', [user.userId, credits, null, 'test', admin.userId]);
    return user;
  }

  it('sends calls that arrive together as one transaction, with the answers each would get alone', async () => {
    const user = await userWith(1000);
    const ids = Array.from({ length: 8 }, () => randomUUID());
    const opened = await Promise.all(ids.map((id) => streams.initialize(user, stream(id))));
    expect(opened.map((r) => r.status)).to.deep.equal(Array(8).fill('open'));
    // concurrent calls may apply in any order, each one seeing the balance the one before left
    expect(opened.map((r) => r.availableCredits).sort((a, b) => b - a)).to.deep.equal(ids.map((_, i) => 1000 - 18 * (i + 1)));
    // the first call goes alone, the second alone too when it arrives while the first is in flight (two batches
    // may be in flight), and the rest wait and go as one transaction (one timestamp): [1, 1, 6] or [1, 7],
    // depending on when the second call arrives
    const rows = await h.db('reservations').whereIn('id', ids).select('created_at');
    const perTimestamp = new Map<number, number>();
    for (const row of rows) perTimestamp.set(new Date(row.created_at).getTime(), (perTimestamp.get(new Date(row.created_at).getTime()) ?? 0) + 1);
    const groups = [...perTimestamp.values()];
    expect(groups.reduce((a, b) => a + b, 0)).to.equal(8);
    expect(groups.length).to.be.at.most(3);
    expect(Math.max(...groups)).to.be.at.least(6);

    // settles in a batch, one of them twice: the repeat answers the settled reservation (idempotent)
    const settles = await Promise.all(
      [...ids, ids[3] as string].map((reservationId, i) =>
        streams.finalize({ reservationId, inputTokens: 1000, outputTokens: i === 8 ? 1 : 100 }, user.userId),
      ),
    );
    expect(settles.map((r) => r.chargedCredits)).to.deep.equal(Array(9).fill(5)); // 3 + ceil(1.5)
    const { availableCredits: _now, ...repeat } = settles[8] as (typeof settles)[number];
    const { availableCredits: _then, ...first } = settles[3] as (typeof settles)[number];
    expect(repeat).to.deep.equal(first); // the repeat answers the settled reservation (with today's balance)
    expect(await h.db('accounts').where({ user_id: user.userId }).first()).to.include({ available: String(1000 - 8 * 5), reserved: '0' });
    expect(await h.db('usage').whereIn('reservation_id', ids)).to.have.length(8);
    await assertInvariant(h.db, user.userId);
  });

  it('runs a batch with a refused call one by one: the refused call gets its error and leaves nothing, the others apply', async () => {
    const user = await userWith(40); // two reservations of 18 fit, a third does not
    const reserve = (input = stream()) => ({ op: 'reserve' as const, actor: user, input: { ...input, ttlSeconds: 600 } });
    const calls = [reserve(), reserve(), reserve(), reserve({ ...stream(), modelId: 'local-dev', maxOutputTokens: 1 })];
    const outcomes = await streams.runCalls(calls);
    expect(outcomes.map((o) => o.ok)).to.deep.equal([true, true, false, true]);
    const refused = (outcomes[2] as { error: ApiError }).error;
    expect(refused).to.be.instanceOf(ApiError);
    expect(refused).to.include({ code: 'INSUFFICIENT_CREDITS' });
    expect(refused.extensions).to.deep.equal({ availableCredits: 4 });
    expect(await h.db('reservations').where({ user_id: user.userId })).to.have.length(3);
    expect(await h.db('reservations').where({ id: calls[2]?.input.reservationId })).to.have.length(0);
    await assertInvariant(h.db, user.userId);
  });

  it('refuses exactly what does not fit when concurrent calls of one account come in batches', async () => {
    const user = await userWith(40);
    const results = await Promise.allSettled([
      ...Array.from({ length: 3 }, () => streams.initialize(user, stream())),
      streams.initialize(user, { ...stream(), modelId: 'local-dev', maxOutputTokens: 1 }),
    ]);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused).to.have.length(1); // whatever the order: two of 18 and the one of 2 fit, the third 18 does not
    expect(refused[0]?.reason).to.include({ code: 'INSUFFICIENT_CREDITS' });
    expect(results[3]).to.include({ status: 'fulfilled' });
    expect(await h.db('accounts').where({ user_id: user.userId }).first()).to.include({ available: '2', reserved: '38' });
    await assertInvariant(h.db, user.userId);
  });

  it('applies all calls of acc_batch or none', async () => {
    const user = await userWith(100);
    const ok = { op: 'reserve' as const, actor: user, input: { ...stream(), ttlSeconds: 600 } };
    const unknownModel = { op: 'reserve' as const, actor: user, input: { ...stream(), modelId: 'no-such-model', ttlSeconds: 600 } };
    let failed: unknown;
    await reservations.batch([ok, unknownModel]).catch((error: unknown) => {
      failed = error;
    });
    expect(failed).to.include({ code: 'P0404' });
    expect(await h.db('reservations').where({ user_id: user.userId })).to.have.length(0);
    expect(await h.db('ledger').where({ user_id: user.userId })).to.have.length(1); // the allocation only
    const [reserved] = await reservations.batch([ok]);
    expect(reserved).to.include({ id: ok.input.reservationId, status: 'open', reserved: 18, available_after: 82 });
    await assertInvariant(h.db, user.userId);
  });

  it('runs the prepared reserve/settle statements inside a caller’s transaction too', async () => {
    const user = await userWith(100);
    const reservationId = randomUUID();
    await h.db.transaction(async (trx) => {
      await reservations.reserve(user, { ...stream(reservationId), ttlSeconds: 600 }, trx);
      const settled = await reservations.settle({ reservationId, status: 'aborted', outputTokens: 0 }, trx);
      expect(settled).to.include({ status: 'aborted' });
      expect(Number(settled.available_after)).to.equal(97); // charged the input estimate: ceil(3)
    });
    await assertInvariant(h.db, user.userId);
  });
});
