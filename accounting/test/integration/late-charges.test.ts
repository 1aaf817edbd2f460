// Issue 14: renewals, charges after an expiry, usage above the reservation, shortfalls, prices fixed at reservation.
import { randomUUID } from 'node:crypto';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { assertInvariant } from '../../src/features/credits/invariant.ts';
import { eventually, type Harness, startAccounting } from '../helpers.ts';

describe('accounting renewals and late charges (real PostgreSQL)', () => {
  let h: Harness;
  const admin = testActor('admin');
  const touched = new Set<string>();

  before(async () => {
    // a short TTL and a fast background sweeper: a reservation nobody renews is expired within a few seconds
    h = await startAccounting({ RESERVATION_TTL_SECONDS: '2', SWEEP_INTERVAL_MS: '100' });
  });
  after(async () => {
    await h.stop();
  });
  afterEach(async () => {
    for (const userId of touched) await assertInvariant(h.db, userId);
  });

  async function userWith(credits: number) {
    const user = testActor('enduser');
    expect((await h.api.as(user, 'GET', '/api/credits/balance')).status).to.equal(200);
    touched.add(user.userId);
    const res = await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: user.userId, credits });
    expect(res.status).to.equal(201);
    return user;
  }
  const call = async (path: string, body: Record<string, unknown>, token?: string) =>
    h.api.json<Record<string, unknown>>(await h.api.internal('POST', `/internal/streaming-sessions/${path}`, body, { token }));
  const reserve = (user: ReturnType<typeof testActor>, body: Record<string, unknown>) => call('initialize', body, h.auth.token(user));
  const row = (id: string) => h.db('reservations').where({ id }).first();

  it('a renewed reservation outlives several TTLs while one nobody renews is expired by the background sweeper', async () => {
    const user = await userWith(1000);
    const renewed = randomUUID();
    const abandoned = randomUUID();
    const first = await reserve(user, { reservationId: renewed, sessionId: 's1', modelId: 'local-dev', inputTokens: 100, maxOutputTokens: 100 });
    expect(first.body).to.include({ status: 'open', ttlSeconds: 2 });
    await reserve(user, { reservationId: abandoned, sessionId: 's2', modelId: 'local-dev', inputTokens: 100, maxOutputTokens: 100 });
    const startedAt = Date.now();
    // renew at an interval below TTL/3 until the abandoned one is expired and three TTLs have passed
    let renewals = 0;
    await eventually(async () => {
      const answer = await call('renew', { reservationId: renewed });
      expect(answer.status).to.equal(200);
      expect(answer.body.status, 'a renewed reservation is never expired').to.equal('open');
      renewals++;
      await new Promise((resolve) => setTimeout(resolve, 500)); // the renew interval of this "stream"
      return (await row(abandoned))?.status === 'expired' && Date.now() - startedAt > 3 * 2_000;
    }, 20_000);
    expect(renewals).to.be.greaterThan(3);
    expect((await row(renewed))?.status).to.equal('open');
    const fin = await call('finalize', { reservationId: renewed, inputTokens: 100, outputTokens: 100 });
    expect(fin.body).to.include({ status: 'finalized', chargedCredits: 2, shortfallCredits: 0 });
    // renewing a settled reservation changes nothing and says so
    const after = await call('renew', { reservationId: renewed });
    expect(after.body).to.include({ status: 'finalized', chargedCredits: 2 });
    expect(await h.db('ledger').where({ reservation_id: renewed, type: 'charge' })).to.have.length(1);
  });

  it('a finalize after the sweeper expired the reservation charges the whole usage from the balance, once', async () => {
    const user = await userWith(50);
    const reservationId = randomUUID();
    // 1000 input + 1000 output tokens of local-dev (1/1k, 2/1k): 3 credits reserved
    await reserve(user, { reservationId, sessionId: 's', modelId: 'local-dev', inputTokens: 1000, maxOutputTokens: 1000 });
    await eventually(async () => (await row(reservationId))?.status === 'expired', 10_000);
    const swept = await row(reservationId);
    expect(swept).to.include({ status: 'expired' });
    expect(swept?.expired_at).to.be.instanceOf(Date);
    const body = { reservationId, inputTokens: 1000, outputTokens: 10_000 }; // 1 + 20 credits
    const late = await call('finalize', body);
    expect(late.body).to.include({ status: 'finalized', chargedCredits: 21, shortfallCredits: 0, availableCredits: 29, releasedCredits: 0 });
    const again = await call('finalize', body);
    expect(again.body).to.deep.equal(late.body);
    const abort = await call('abort', { reservationId, outputTokens: 5 });
    expect(abort.body).to.include({ status: 'finalized', chargedCredits: 21 });
    expect(await h.db('ledger').where({ reservation_id: reservationId, type: 'charge' })).to.have.length(1);
    expect(await h.db('usage').where({ reservation_id: reservationId }).first()).to.include({ output_tokens: 10_000 });
  });

  it('usage above the reservation takes the difference from the balance, never below zero, and records the shortfall', async () => {
    const user = await userWith(10);
    const reservationId = randomUUID();
    // claude-3-7-sonnet (3/1k in, 15/1k out): 1000 + 200 tokens reserve 3 + 3 = 6 of the 10 credits
    const reserved = await reserve(user, { reservationId, sessionId: 's', modelId: 'claude-3-7-sonnet', inputTokens: 1000, maxOutputTokens: 200 });
    expect(reserved.body).to.include({ reservedCredits: 6, availableCredits: 4 });
    expect(reserved.body.prices).to.deep.equal({ inputPer1k: 3, outputPer1k: 15 });
    // true usage 3000 + 1000 tokens: 9 + 15 = 24 credits; the hold pays 6, the balance 4, 14 are short
    const fin = await call('finalize', { reservationId, inputTokens: 3000, outputTokens: 1000 });
    expect(fin.body).to.include({ status: 'finalized', chargedCredits: 10, shortfallCredits: 14, availableCredits: 0, releasedCredits: 0 });
    expect(await row(reservationId)).to.include({ shortfall: '14', beyond_hold: '4', charged: '10' });
    expect(await h.db('usage').where({ reservation_id: reservationId }).first()).to.include({
      input_tokens: 3000,
      output_tokens: 1000,
      credits: '10',
      shortfall: '14',
    });
    const balance = await h.api.json(await h.api.as(user, 'GET', '/api/credits/balance'));
    expect(balance.body).to.include({ available: 0, reserved: 0 });
  });

  it('a price change between reservation and finalize charges the prices of the reservation answer', async () => {
    const user = await userWith(1000);
    const reservationId = randomUUID();
    const reserved = await reserve(user, { reservationId, sessionId: 's', modelId: 'openai-compatible', inputTokens: 1000, maxOutputTokens: 1000 });
    const prices = reserved.body.prices as { inputPer1k: number; outputPer1k: number };
    const changed = await h.api.as(admin, 'PUT', '/api/models/prices/openai-compatible', {
      inputPer1k: prices.inputPer1k * 10,
      outputPer1k: prices.outputPer1k * 10,
    });
    expect(changed.status).to.equal(200);
    const fin = await call('finalize', { reservationId, inputTokens: 1000, outputTokens: 1000 });
    expect(fin.body.chargedCredits).to.equal(prices.inputPer1k + prices.outputPer1k);
    expect(fin.body.prices).to.deep.equal(prices);
    // a new reservation gets the new prices
    const next = await reserve(user, { reservationId: randomUUID(), sessionId: 's2', modelId: 'openai-compatible', inputTokens: 1000, maxOutputTokens: 1000 });
    expect(next.body.prices).to.deep.equal({ inputPer1k: prices.inputPer1k * 10, outputPer1k: prices.outputPer1k * 10 });
    await call('abort', { reservationId: next.body.reservationId as string, outputTokens: 0 });
  });
});
