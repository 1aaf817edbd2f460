// Issue 14 (5): an admin allocating to a user auth created a moment ago gets 201, not 404, whether or not the
// user.registered event has reached accounting yet: accounting asks auth (GET /internal/users) just in time.
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { assertInvariant } from '../../src/features/credits/invariant.ts';
import { type Harness, startAccounting } from '../helpers.ts';

describe('accounting creates accounts just in time from auth (real PostgreSQL, auth over HTTP)', () => {
  let h: Harness;
  const admin = testActor('admin');

  before(async () => {
    h = await startAccounting();
  });
  after(async () => {
    await h.stop();
  });

  it('allocating to a user accounting never heard of: asks auth with a service token, creates the account, 201', async () => {
    const fresh = testActor('enduser');
    h.authStub.users.set(fresh.userId, {
      id: fresh.userId,
      username: fresh.username,
      email: fresh.email,
      role: 'enduser',
      status: 'active',
      emailVerified: true,
      createdAt: new Date().toISOString(),
    });
    expect(await h.db('accounts').where({ user_id: fresh.userId }).first()).to.equal(undefined);
    const res = await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: fresh.userId, credits: 25 });
    const { status, body } = await h.api.json(res);
    expect(status, JSON.stringify(body)).to.equal(201);
    expect(body).to.include({ newBalance: 25 });
    expect(h.authStub.calls).to.deep.include({ ids: fresh.userId, caller: 'accounting' });
    expect(await h.db('accounts').where({ user_id: fresh.userId }).first()).to.include({ username: fresh.username, email: fresh.email, role: 'enduser' });
    const balance = await h.api.json(await h.api.as(admin, 'GET', `/api/credits/balance?userId=${fresh.userId}`));
    expect(balance.body).to.include({ available: 25 });
    await assertInvariant(h.db, fresh.userId);
  });

  it('a user auth does not know either stays unknown: 404, and no account is created', async () => {
    const ghost = testActor('enduser');
    const res = await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: ghost.userId, credits: 25 });
    expect(res.status).to.equal(404);
    expect(await h.db('accounts').where({ user_id: ghost.userId }).first()).to.equal(undefined);
  });
});
