// DESIGN 5b: the credits charged through an API key never exceed its limit, also for what a settle takes beyond the
// reservation's hold (usage above the estimate, a settle after an expiry). What the key has no room for is shortfall.
import { randomUUID } from 'node:crypto';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { assertInvariant } from '../../src/features/credits/invariant.ts';
import { eventually, type Harness, startAccounting } from '../helpers.ts';

describe('API-key credit limits on late and above-estimate charges (real PostgreSQL)', () => {
  let h: Harness;
  const admin = testActor('admin');
  const touched = new Set<string>();

  before(async () => {
    h = await startAccounting({ RESERVATION_TTL_SECONDS: '2', SWEEP_INTERVAL_MS: '100' });
  });
  after(async () => {
    await h.stop();
  });
  afterEach(async () => {
    for (const userId of touched) await assertInvariant(h.db, userId);
  });

  /** A user with credits and a key accounting already knows (as if learned from auth on a first reservation). */
  async function userWithKey(credits: number, creditLimit: number) {
    const user = testActor('enduser');
    expect((await h.api.as(user, 'GET', '/api/credits/balance')).status).to.equal(200);
    touched.add(user.userId);
    expect((await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: user.userId, credits })).status).to.equal(201);
    const apiKeyId = randomUUID();
    await h.db('api_keys').insert({ id: apiKeyId, user_id: user.userId, credit_limit: creditLimit });
    return { user, apiKeyId };
  }
  const call = async (path: string, body: Record<string, unknown>, token?: string) =>
    h.api.json<Record<string, unknown>>(await h.api.internal('POST', `/internal/streaming-sessions/${path}`, body, { token }));
  const reserve = (user: ReturnType<typeof testActor>, body: Record<string, unknown>) => call('initialize', body, h.auth.token(user));
  const keySpend = async (user: ReturnType<typeof testActor>) => {
    const res = await h.api.json<{ apiKeys: Array<{ chargedCredits: number; heldCredits: number }> }>(await h.api.as(user, 'GET', '/api/credits/api-keys'));
    return res.body.apiKeys[0];
  };

  it("a reservation through a key answers what the key's limit still allows after it (null without a limit, absent without a key)", async () => {
    const { user, apiKeyId } = await userWithKey(100, 10);
    // local-dev (1/1k in, 2/1k out): 1000 + 1000 tokens hold 3 credits of the key's 10
    const body = (i: number) => ({ reservationId: randomUUID(), sessionId: `s${i}`, modelId: 'local-dev', inputTokens: 1000, maxOutputTokens: 1000 });
    const first = await reserve(user, { ...body(1), apiKeyId });
    expect(first.body).to.include({ reservedCredits: 3, apiKeyRemainingCredits: 7, availableCredits: 97 });
    const second = await reserve(user, { ...body(2), apiKeyId });
    expect(second.body).to.include({ apiKeyRemainingCredits: 4, availableCredits: 94 });
    const unlimited = randomUUID();
    await h.db('api_keys').insert({ id: unlimited, user_id: user.userId, credit_limit: null });
    const throughUnlimited = await reserve(user, { ...body(3), apiKeyId: unlimited });
    expect(throughUnlimited.status).to.equal(200);
    expect(throughUnlimited.body.apiKeyRemainingCredits).to.equal(null);
    const withoutKey = await reserve(user, body(4));
    expect(withoutKey.status).to.equal(200);
    expect(withoutKey.body).to.not.have.property('apiKeyRemainingCredits');
  });

  it('usage above the reservation is charged beyond the hold only up to the key limit; the rest is shortfall', async () => {
    const { user, apiKeyId } = await userWithKey(100, 10);
    const reservationId = randomUUID();
    // claude-3-7-sonnet (3/1k in, 15/1k out): 1000 + 200 tokens hold 6 credits
    const reserved = await reserve(user, { reservationId, sessionId: 's', modelId: 'claude-3-7-sonnet', inputTokens: 1000, maxOutputTokens: 200, apiKeyId });
    expect(reserved.body).to.include({ reservedCredits: 6 });
    // 3000 + 1000 tokens cost 24: the hold pays 6, the key has 4 left, 14 are short although the balance has 94
    const fin = await call('finalize', { reservationId, inputTokens: 3000, outputTokens: 1000 });
    expect(fin.body).to.include({ status: 'finalized', chargedCredits: 10, shortfallCredits: 14, availableCredits: 90 });
    expect(await keySpend(user)).to.include({ chargedCredits: 10, heldCredits: 0 });
  });

  it('a settle after the sweeper expired the reservation is charged up to what the key has left', async () => {
    const { user, apiKeyId } = await userWithKey(100, 10);
    const reservationId = randomUUID();
    await reserve(user, { reservationId, sessionId: 's', modelId: 'local-dev', inputTokens: 1000, maxOutputTokens: 1000, apiKeyId });
    await eventually(async () => (await h.db('reservations').where({ id: reservationId }).first())?.status === 'expired', 10_000);
    // 1000 + 10000 tokens of local-dev (1/1k, 2/1k) cost 21; the key allows 10
    const late = await call('finalize', { reservationId, inputTokens: 1000, outputTokens: 10_000 });
    expect(late.body).to.include({ status: 'finalized', chargedCredits: 10, shortfallCredits: 11, availableCredits: 90 });
  });

  it('two settles above their holds at once through one key charge at most the limit between them', async () => {
    const { user, apiKeyId } = await userWithKey(100, 10);
    const ids = [randomUUID(), randomUUID()];
    for (const [i, reservationId] of ids.entries()) {
      // local-dev 1000 + 1000 tokens: 3 credits each, 6 of the key's 10 held
      await reserve(user, { reservationId, sessionId: `s${i}`, modelId: 'local-dev', inputTokens: 1000, maxOutputTokens: 1000, apiKeyId });
    }
    const settled = await Promise.all(ids.map((reservationId) => call('finalize', { reservationId, inputTokens: 1000, outputTokens: 10_000 })));
    const charged = settled.map((s) => s.body.chargedCredits as number);
    expect(charged.reduce((a, b) => a + b, 0)).to.equal(10);
    expect(settled.map((s) => s.body.shortfallCredits as number).reduce((a, b) => a + b, 0)).to.equal(42 - 10);
    expect(await keySpend(user)).to.include({ chargedCredits: 10, heldCredits: 0 });
    const balance = await h.api.json(await h.api.as(user, 'GET', '/api/credits/balance'));
    expect(balance.body).to.include({ available: 90, reserved: 0 });
  });
});
