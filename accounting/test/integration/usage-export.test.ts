// Usage export (issue 14): CSV per UTC day, user and model, admin (everyone or one user) or own.
import { randomUUID } from 'node:crypto';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { type Harness, startAccounting } from '../helpers.ts';

describe('accounting usage export as CSV (real PostgreSQL)', () => {
  let h: Harness;
  const admin = testActor('admin');

  before(async () => {
    h = await startAccounting();
  });
  after(async () => {
    await h.stop();
  });

  async function streamed(user: ReturnType<typeof testActor>, modelId: string, inputTokens: number, outputTokens: number) {
    const reservationId = randomUUID();
    const init = await h.api.internal(
      'POST',
      '/internal/streaming-sessions/initialize',
      { reservationId, sessionId: 's', modelId, inputTokens, maxOutputTokens: 1000 },
      { token: h.auth.token(user) },
    );
    expect(init.status).to.equal(200);
    const fin = await h.api.internal('POST', '/internal/streaming-sessions/finalize', { reservationId, inputTokens, outputTokens });
    return (await h.api.json<{ chargedCredits: number; shortfallCredits: number }>(fin)).body;
  }

  it('exports tokens and credits (with any shortfall) per day, user and model; own only for a user, everyone for an admin', async () => {
    const alice = testActor('enduser');
    const bob = testActor('enduser');
    for (const user of [alice, bob]) {
      expect((await h.api.as(user, 'GET', '/api/credits/balance')).status).to.equal(200);
      expect((await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: user.userId, credits: 100 })).status).to.equal(201);
    }
    await streamed(alice, 'local-dev', 1000, 1000); // 1 + 2
    await streamed(alice, 'local-dev', 2000, 500); // 2 + 1
    await streamed(alice, 'claude-3-7-sonnet', 1000, 1000); // 3 + 15
    const short = await streamed(bob, 'claude-3-7-sonnet', 1000, 10_000); // 3 + 150: 100 charged, 53 short
    expect(short).to.include({ chargedCredits: 100, shortfallCredits: 53 });

    const own = await h.api.as(alice, 'GET', '/api/usage/export');
    expect(own.status).to.equal(200);
    expect(own.headers.get('content-type')).to.match(/^text\/csv/);
    expect(own.headers.get('content-disposition')).to.match(/^attachment; filename="usage-/);
    const day = new Date().toISOString().slice(0, 10);
    const lines = (await own.text()).trimEnd().split('\r\n');
    expect(lines).to.deep.equal([
      'day,user_id,username,model_id,requests,input_tokens,output_tokens,credits,shortfall_credits',
      `${day},${alice.userId},${alice.username},claude-3-7-sonnet,1,1000,1000,18,0`,
      `${day},${alice.userId},${alice.username},local-dev,2,3000,1500,6,0`,
    ]);
    expect((await h.api.as(alice, 'GET', `/api/usage/export?userId=${bob.userId}`)).status).to.equal(403);

    const everyone = (await (await h.api.as(admin, 'GET', '/api/usage/export')).text()).trimEnd().split('\r\n');
    expect(everyone).to.include(`${day},${bob.userId},${bob.username},claude-3-7-sonnet,1,1000,10000,100,53`);
    expect(everyone.filter((line) => line.includes(alice.userId))).to.have.length(2);
    const onlyBob = (await (await h.api.as(admin, 'GET', `/api/usage/export?userId=${bob.userId}`)).text()).trimEnd().split('\r\n');
    expect(onlyBob).to.have.length(2);
    const past = await h.api.as(admin, 'GET', '/api/usage/export?from=2020-01-01&to=2020-02-01');
    expect((await past.text()).trimEnd().split('\r\n')).to.have.length(1);
    const bad = await h.api.as(admin, 'GET', '/api/usage/export?from=2021-01-01&to=2020-01-01');
    expect(bad.status).to.equal(400);
  });
});
