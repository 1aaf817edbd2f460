import { randomUUID } from 'node:crypto';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { assertInvariant } from '../../src/features/credits/invariant.ts';
import { sweepOnce } from '../../src/sweeper.ts';
import { eventually, type Harness, startAccounting } from '../helpers.ts';

describe('accounting credits (real PostgreSQL)', () => {
  let h: Harness;
  const admin = testActor('admin');
  const touched = new Set<string>();

  before(async () => {
    h = await startAccounting({ SWEEP_INTERVAL_MS: '100000' });
  });
  after(async () => {
    await h.stop();
  });
  afterEach(async () => {
    // the money rules hold for every user a scenario touched
    for (const userId of touched) await assertInvariant(h.db, userId);
  });

  async function newUser(role: 'enduser' | 'supervisor' = 'enduser') {
    const user = testActor(role);
    const res = await h.api.as(user, 'GET', '/api/credits/balance'); // first request creates the account
    expect(res.status).to.equal(200);
    touched.add(user.userId);
    return user;
  }

  async function allocate(userId: string, credits: number, extra: Record<string, unknown> = {}) {
    const res = await h.api.as(admin, 'POST', '/api/credits/allocate', { userId, credits, ...extra });
    const { status, body } = await h.api.json(res);
    expect(status, JSON.stringify(body)).to.equal(201);
    return body as { allocation: { id: string; remaining: number }; newBalance: number };
  }

  async function balance(user: { userId: string }) {
    const { body } = await h.api.json(await h.api.as(admin, 'GET', `/api/credits/balance?userId=${user.userId}`));
    return body as { available: number; reserved: number; allocations: Array<{ id: string; remaining: number; expiresAt: string | null }> };
  }

  const initialize = (user: Parameters<typeof h.auth.token>[0], body: Record<string, unknown>) =>
    h.api.internal('POST', '/internal/streaming-sessions/initialize', body, { token: h.auth.token(user) });

  it('deduct: a reason up to 128 characters is stored, a longer one or one with NUL is a 400 (fuzzer finding)', async () => {
    const user = await newUser();
    await allocate(user.userId, 50);
    const long = await h.api.json(await h.api.as(admin, 'POST', '/api/credits/deduct', { userId: user.userId, credits: 1, reason: '0'.repeat(129) }));
    expect(long.status).to.equal(400);
    const nul = await h.api.json(await h.api.as(admin, 'POST', '/api/credits/deduct', { userId: user.userId, credits: 1, reason: 'a\u0000b' }));
    expect(nul.status).to.equal(400);
    const fits = await h.api.json(await h.api.as(admin, 'POST', '/api/credits/deduct', { userId: user.userId, credits: 1, reason: '0'.repeat(128) }));
    expect(fits.status, JSON.stringify(fits.body)).to.equal(200);
    expect((await balance(user)).available).to.equal(49);
  });

  it('creates accounts just in time and allocates with a ledger entry and a new balance', async () => {
    const user = await newUser();
    const first = await allocate(user.userId, 500, { notes: 'welcome' });
    expect(first.newBalance).to.equal(500);
    expect(first.allocation).to.include({ remaining: 500, credits: 500, notes: 'welcome', allocatedBy: admin.userId, expiresAt: null });
    const b = await balance(user);
    expect(b).to.include({ available: 500, reserved: 0 });
    const tx = await h.api.json<{ total: number; transactions: unknown[] }>(await h.api.as(user, 'GET', '/api/credits/transactions'));
    expect(tx.body.total).to.equal(1);
    expect(tx.body.transactions[0]).to.include({ type: 'allocation', amount: 500, balanceAfter: 500 });
    const total = await h.api.json(await h.api.as(user, 'GET', '/api/credits/total-balance'));
    expect(total.body).to.deep.equal({ totalCredits: 500 });
  });

  it('never overspends under 200+ concurrent reserve/finalize/abort/deduct calls on one account', async () => {
    const user = await newUser();
    await allocate(user.userId, 300, { expiryDays: 1 });
    await allocate(user.userId, 300, { expiryDays: 2 });
    await allocate(user.userId, 400);
    // claude-3-7-sonnet: 3/1k input, 15/1k output -> 1000 + 1000 tokens reserve 18 credits
    const chain = async (i: number) => {
      const reservationId = randomUUID();
      const init = await initialize(user, { reservationId, sessionId: `s${i}`, modelId: 'claude-3-7-sonnet', inputTokens: 1000, maxOutputTokens: 1000 });
      if (init.status === 402) return { reserved: 0, charged: 0, refused: 1 };
      expect(init.status).to.equal(200);
      const outputTokens = i % 3 === 0 ? 200 : i % 2 ? 5000 : 500;
      const settle =
        i % 3 === 0
          ? await h.api.internal('POST', '/internal/streaming-sessions/abort', { reservationId, outputTokens })
          : await h.api.internal('POST', '/internal/streaming-sessions/finalize', { reservationId, inputTokens: 1000, outputTokens });
      const { status, body } = await h.api.json(settle);
      expect(status, JSON.stringify(body)).to.equal(200);
      // the whole cost of the usage is charged (above the hold: from the balance) or recorded as shortfall (DESIGN 8)
      const cost = 3 + Math.ceil((outputTokens * 15) / 1000);
      expect((body.chargedCredits as number) + (body.shortfallCredits as number)).to.equal(cost);
      expect(body.chargedCredits).to.be.at.least(Math.min(cost, body.reservedCredits as number));
      return { reserved: 1, charged: body.chargedCredits as number, refused: 0 };
    };
    const deduction = async () => {
      const res = await h.api.as(admin, 'POST', '/api/credits/deduct', { userId: user.userId, credits: 7 });
      if (res.status === 402) return { reserved: 0, charged: 0, refused: 1 };
      expect(res.status).to.equal(200);
      return { reserved: 0, charged: 7, refused: 0 };
    };
    const results = await Promise.all([...Array.from({ length: 120 }, (_, i) => chain(i)), ...Array.from({ length: 80 }, () => deduction())]);
    const spent = results.reduce((sum, r) => sum + r.charged, 0);
    const refused = results.reduce((sum, r) => sum + r.refused, 0);
    expect(refused, 'demand exceeds the balance, so some calls are refused').to.be.greaterThan(0);
    const after = await balance(user);
    expect(after.reserved).to.equal(0);
    expect(after.available).to.equal(1000 - spent);
    expect(after.available).to.be.at.least(0);
    await assertInvariant(h.db, user.userId);
  });

  it('creates one allocation for 20 parallel retries with one Idempotency-Key, and refuses the key with another body', async () => {
    const user = await newUser();
    const key = `alloc-${randomUUID()}`;
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        h.api.as(admin, 'POST', '/api/credits/allocate', { userId: user.userId, credits: 42 }, { 'idempotency-key': key }).then(h.api.json),
      ),
    );
    for (const r of responses) expect(r.status).to.equal(201);
    const ids = new Set(responses.map((r) => (r.body.allocation as { id: string }).id));
    expect(ids.size).to.equal(1);
    expect(responses.every((r) => r.body.newBalance === 42)).to.equal(true);
    const rows = await h.db('allocations').where({ user_id: user.userId });
    expect(rows).to.have.length(1);
    const other = await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: user.userId, credits: 43 }, { 'idempotency-key': key });
    expect(other.status).to.equal(409);
    expect((await h.api.json(other)).body.code).to.equal('CONFLICT');
    expect(await h.db('allocations').where({ user_id: user.userId })).to.have.length(1);
  });

  it('leaves no idempotency key behind when the first attempt fails, so a retry can succeed', async () => {
    const key = `alloc-${randomUUID()}`;
    const later = testActor('enduser');
    const failed = await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: later.userId, credits: 5 }, { 'idempotency-key': key });
    expect(failed.status).to.equal(404);
    expect(await h.db('idempotency_keys').where({ key })).to.have.length(0);
    await h.api.as(later, 'GET', '/api/credits/balance');
    touched.add(later.userId);
    const retried = await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: later.userId, credits: 5 }, { 'idempotency-key': key });
    expect(retried.status).to.equal(201);
    const replay = await h.api.as(admin, 'POST', '/api/credits/allocate', { credits: 5, userId: later.userId }, { 'idempotency-key': key });
    expect(replay.status).to.equal(201);
    expect(replay.headers.get('idempotent-replayed')).to.equal('true');
    expect(await h.db('allocations').where({ user_id: later.userId })).to.have.length(1);
  });

  it('spends the soonest-expiring allocation first, stops counting expired ones, and the sweep writes their expiry', async () => {
    const user = await newUser();
    const never = await allocate(user.userId, 100);
    const later = await allocate(user.userId, 100, { expiryDays: 30 });
    const soon = await allocate(user.userId, 50, { expiryDays: 1 });
    const deduct = await h.api.as(admin, 'POST', '/api/credits/deduct', { userId: user.userId, credits: 70 });
    expect(deduct.status).to.equal(200);
    const remaining = async () =>
      Object.fromEntries((await h.db('allocations').where({ user_id: user.userId })).map((row) => [String(row.id), Number(row.remaining)]));
    expect(await remaining()).to.deep.equal({ [never.allocation.id]: 100, [later.allocation.id]: 80, [soon.allocation.id]: 0 });

    // time passes: the 30-day allocation is now past its expiry
    await h
      .db('allocations')
      .where({ id: later.allocation.id })
      .update({ expires_at: h.db.raw("now() - interval '1 second'") });
    const before = await balance(user);
    expect(before.available, 'expired credits stop counting before the sweep').to.equal(100);
    expect(before.allocations.map((a) => a.id)).to.deep.equal([never.allocation.id]);

    const swept = await sweepOnce(h.db, { idempotencyTtlHours: 24 });
    expect(swept.accounts).to.be.at.least(1);
    const expiry = await h.db('ledger').where({ user_id: user.userId, type: 'expiry' });
    expect(expiry).to.have.length(1);
    expect(Number(expiry[0].amount)).to.equal(-80);
    expect(await remaining()).to.deep.equal({ [never.allocation.id]: 100, [later.allocation.id]: 0, [soon.allocation.id]: 0 });
    await assertInvariant(h.db, user.userId);
    const again = await sweepOnce(h.db, { idempotencyTtlHours: 24 });
    expect(again.accounts).to.equal(0);
    expect(await h.db('ledger').where({ user_id: user.userId, type: 'expiry' })).to.have.length(1);
  });

  it('expires credits released into an allocation that expired while a stream held them', async () => {
    const user = await newUser();
    const soon = await allocate(user.userId, 20, { expiryDays: 1 });
    await allocate(user.userId, 100);
    const reservationId = randomUUID();
    const init = await h.api.json(
      await initialize(user, { reservationId, sessionId: 's', modelId: 'claude-3-7-sonnet', inputTokens: 1000, maxOutputTokens: 1000 }),
    );
    expect(init.body.reservedCredits).to.equal(18); // all from the soon-expiring allocation
    await h
      .db('allocations')
      .where({ id: soon.allocation.id })
      .update({ expires_at: h.db.raw("now() - interval '1 second'") });
    await sweepOnce(h.db, { idempotencyTtlHours: 24 });
    const fin = await h.api.json(
      await h.api.internal('POST', '/internal/streaming-sessions/finalize', { reservationId, inputTokens: 1000, outputTokens: 100 }),
    );
    expect(fin.body).to.include({ status: 'finalized', chargedCredits: 5, releasedCredits: 13, availableCredits: 100 });
    const b = await balance(user);
    expect(b).to.include({ available: 100, reserved: 0 });
  });

  it('finalizes and aborts idempotently, charging the usage (above the reservation: from the balance) and recording usage once', async () => {
    const user = await newUser();
    await allocate(user.userId, 1000);
    const reservationId = randomUUID();
    const body = { reservationId, sessionId: 'sess-1', modelId: 'local-dev', inputTokens: 1500, maxOutputTokens: 1000 };
    const first = await h.api.json(await initialize(user, body));
    expect(first.status).to.equal(200);
    expect(first.body).to.include({ status: 'open', reservedCredits: 4, chargedCredits: 0, availableCredits: 996 }); // ceil(1.5) + 2
    const repeat = await h.api.json(await initialize(user, body));
    expect(repeat.body).to.include({ status: 'open', reservedCredits: 4, availableCredits: 996 });
    const active = await h.api.json(await h.api.as(admin, 'GET', `/api/streaming-sessions/active/${user.userId}`));
    expect((active.body.sessions as unknown[]).length).to.equal(1);

    // usage above the reservation (DESIGN 8): the hold pays 4, the fifth credit comes from the balance
    const fin = { reservationId, inputTokens: 1500, outputTokens: 1200 };
    const a = await h.api.json(await h.api.internal('POST', '/internal/streaming-sessions/finalize', fin));
    expect(a.body).to.include({ status: 'finalized', chargedCredits: 5, releasedCredits: 0, availableCredits: 995, shortfallCredits: 0 });
    const b = await h.api.json(await h.api.internal('POST', '/internal/streaming-sessions/finalize', fin));
    expect(b.body).to.deep.equal(a.body);
    const abortAfter = await h.api.json(await h.api.internal('POST', '/internal/streaming-sessions/abort', { reservationId, outputTokens: 1 }));
    expect(abortAfter.body).to.include({ status: 'finalized', chargedCredits: 5 });
    expect(await h.db('usage').where({ reservation_id: reservationId })).to.have.length(1);
    const record = await h.api.json(
      await h.api.internal('POST', '/internal/usage/record', {
        userId: user.userId,
        modelId: 'local-dev',
        inputTokens: 1500,
        outputTokens: 10,
        credits: 5,
        reservationId,
      }),
    );
    expect(record.status).to.equal(201);
    expect(record.body.recorded).to.equal(false);
    expect(await h.db('usage').where({ reservation_id: reservationId })).to.have.length(1);

    const r2 = randomUUID();
    await initialize(user, { ...body, reservationId: r2 });
    const ab = await h.api.json(await h.api.internal('POST', '/internal/streaming-sessions/abort', { reservationId: r2, outputTokens: 300 }));
    expect(ab.body).to.include({ status: 'aborted', chargedCredits: 3, releasedCredits: 1, availableCredits: 992 }); // ceil(1.5) + ceil(0.6)
  });

  it('answers INSUFFICIENT_CREDITS (402) before reserving more than is available', async () => {
    const user = await newUser();
    await allocate(user.userId, 10);
    const res = await initialize(user, { reservationId: randomUUID(), sessionId: 's', modelId: 'claude-3-7-sonnet', inputTokens: 1000, maxOutputTokens: 1000 });
    expect(res.status).to.equal(402);
    const problem = await res.json();
    expect(problem).to.include({ code: 'INSUFFICIENT_CREDITS', availableCredits: 10 });
    expect(await h.db('reservations').where({ user_id: user.userId })).to.have.length(0);
    const deduct = await h.api.as(admin, 'POST', '/api/credits/deduct', { userId: user.userId, credits: 11 });
    expect(deduct.status).to.equal(402);
    expect((await balance(user)).available).to.equal(10);
  });

  it('finalizes after the user token expired, and with no user token at all', async () => {
    const user = await newUser();
    await allocate(user.userId, 100);
    const reservationId = randomUUID();
    const init = await initialize(user, { reservationId, sessionId: 's', modelId: 'local-dev', inputTokens: 10, maxOutputTokens: 100 });
    expect(init.status).to.equal(200);
    const expired = h.auth.token(user, { ttlSeconds: -120 });
    const refused = await h.api.internal(
      'POST',
      '/internal/streaming-sessions/initialize',
      { reservationId: randomUUID(), sessionId: 's', modelId: 'local-dev', inputTokens: 10, maxOutputTokens: 100 },
      { token: expired },
    );
    expect(refused.status).to.equal(401);
    expect((await h.api.json(refused)).body.code).to.equal('TOKEN_EXPIRED');
    const fin = await h.api.internal('POST', '/internal/streaming-sessions/finalize', { reservationId, inputTokens: 10, outputTokens: 50 }, { token: expired });
    expect(fin.status).to.equal(200);
    expect((await h.api.json(fin)).body.status).to.equal('finalized');
    const r2 = randomUUID();
    await initialize(user, { reservationId: r2, sessionId: 's', modelId: 'local-dev', inputTokens: 10, maxOutputTokens: 100 });
    const ab = await h.api.internal('POST', '/internal/streaming-sessions/abort', { reservationId: r2, outputTokens: 5 });
    expect(ab.status).to.equal(200);
  });

  it('refuses to settle another user\u2019s reservation when a user token is sent', async () => {
    const owner = await newUser();
    const other = await newUser();
    await allocate(owner.userId, 100);
    const reservationId = randomUUID();
    await initialize(owner, { reservationId, sessionId: 's', modelId: 'local-dev', inputTokens: 10, maxOutputTokens: 100 });
    const res = await h.api.internal(
      'POST',
      '/internal/streaming-sessions/finalize',
      { reservationId, inputTokens: 1, outputTokens: 1 },
      { token: h.auth.token(other) },
    );
    expect(res.status).to.equal(403);
    await allocate(other.userId, 100);
    const clash = await initialize(other, { reservationId, sessionId: 's', modelId: 'local-dev', inputTokens: 10, maxOutputTokens: 100 });
    expect(clash.status).to.equal(409);
    // the refused attempt left nothing behind
    expect(await h.db('ledger').where({ user_id: other.userId, type: 'reservation' })).to.have.length(0);
    expect(await balance(other)).to.include({ available: 100, reserved: 0 });
    await h.api.internal('POST', '/internal/streaming-sessions/abort', { reservationId, outputTokens: 0 });
  });

  it('expires reservations left open past their TTL and releases them (sweep)', async () => {
    const user = await newUser();
    await allocate(user.userId, 100);
    const reservationId = randomUUID();
    await initialize(user, { reservationId, sessionId: 's', modelId: 'local-dev', inputTokens: 10, maxOutputTokens: 1000 });
    expect(await balance(user)).to.include({ available: 97, reserved: 3 });
    const notYet = await sweepOnce(h.db, { idempotencyTtlHours: 24 });
    expect(notYet.reservations).to.equal(0);
    // the TTL passes
    await h
      .db('reservations')
      .where({ id: reservationId })
      .update({ expires_at: h.db.raw("now() - interval '1 second'") });
    const swept = await sweepOnce(h.db, { idempotencyTtlHours: 24 });
    expect(swept.reservations).to.equal(1);
    expect(await balance(user)).to.include({ available: 100, reserved: 0 });
    // a charge that arrives after the expiry is still taken, from the balance (DESIGN 8): ceil(0.01) + ceil(0.02)
    const late = await h.api.json(await h.api.internal('POST', '/internal/streaming-sessions/finalize', { reservationId, inputTokens: 10, outputTokens: 10 }));
    expect(late.body).to.include({ status: 'finalized', chargedCredits: 2, releasedCredits: 0, availableCredits: 98, shortfallCredits: 0 });
  });

  it('uses the price at reservation time after an admin changes it, and reports usage by day and model', async () => {
    const user = await newUser();
    await allocate(user.userId, 1000);
    const reservationId = randomUUID();
    await initialize(user, { reservationId, sessionId: 's', modelId: 'openai-compatible', inputTokens: 1000, maxOutputTokens: 1000 }); // 1 + 4
    const put = await h.api.json(await h.api.as(admin, 'PUT', '/api/models/prices/openai-compatible', { inputPer1k: 10, outputPer1k: 40 }));
    expect(put.status).to.equal(200);
    expect(put.body).to.include({ modelId: 'openai-compatible', inputPer1k: 10, outputPer1k: 40 });
    const fin = await h.api.json(
      await h.api.internal('POST', '/internal/streaming-sessions/finalize', { reservationId, inputTokens: 1000, outputTokens: 1000 }),
    );
    expect(fin.body.chargedCredits).to.equal(5);
    const calc = await h.api.json(
      await h.api.as(user, 'POST', '/api/credits/calculate', { modelId: 'openai-compatible', inputTokens: 1000, outputTokens: 1000 }),
    );
    expect(calc.body.credits).to.equal(50);
    const stats = await h.api.json(await h.api.as(user, 'GET', '/api/usage/stats'));
    expect(stats.status).to.equal(200);
    expect(stats.body.totals).to.deep.equal({ requests: 1, inputTokens: 1000, outputTokens: 1000, credits: 5 });
    expect((stats.body.byModel as Array<{ modelId: string }>)[0]?.modelId).to.equal('openai-compatible');
    expect(stats.body.byDay as unknown[]).to.have.length(1);
    await h.api.as(admin, 'PUT', '/api/models/prices/openai-compatible', { inputPer1k: 1, outputPer1k: 4 });
  });

  it('runs the sweeper in the background on its interval', async () => {
    const fast = await startAccounting({ SWEEP_INTERVAL_MS: '50' });
    try {
      const user = testActor('enduser');
      await fast.api.as(user, 'GET', '/api/credits/balance');
      await fast.api.as(admin, 'POST', '/api/credits/allocate', { userId: user.userId, credits: 50 });
      const reservationId = randomUUID();
      await fast.api.internal(
        'POST',
        '/internal/streaming-sessions/initialize',
        { reservationId, sessionId: 's', modelId: 'local-dev', inputTokens: 1, maxOutputTokens: 500 },
        { token: fast.auth.token(user) },
      );
      await fast
        .db('reservations')
        .where({ id: reservationId })
        .update({ expires_at: fast.db.raw("now() - interval '1 second'") });
      await eventually(async () => (await fast.db('reservations').where({ id: reservationId }).first())?.status === 'expired');
      await assertInvariant(fast.db, user.userId);
    } finally {
      await fast.stop();
    }
  });
});
