import { expectProblem } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { startTestService, type TestService } from '../helpers.ts';

/**
 * DESIGN 7: auth routes exactly as the gateway matches. A case or trailing-slash variant of /api/auth/login
 * on the service port is 404: it is never a login (the gateway only limits the canonical spelling as a login).
 */
describe('auth: routes match case-sensitively and strictly', () => {
  let t: TestService;
  before(async () => {
    t = await startTestService();
  });
  after(async () => {
    await t.stop();
  });

  it('answers 404 to LOGIN, Login and login/, even with the right password, and counts no failed attempt', async () => {
    const identity = await t.signupVerified();
    for (const path of ['/api/auth/LOGIN', '/api/auth/Login', '/api/auth/login/', '/API/auth/login']) {
      for (const password of [identity.password, 'wrong password!']) {
        await expectProblem(await t.call('POST', path, { body: { email: identity.email, password } }), 404, 'NOT_FOUND');
      }
    }
    // 8 wrong passwords on variants would have locked the account if they had been logins
    for (let i = 0; i < 8; i++) {
      await expectProblem(await t.call('POST', '/api/auth/LOGIN', { body: { email: identity.email, password: 'wrong password!' } }), 404, 'NOT_FOUND');
    }
    const session = await t.login(identity);
    expect(session.user.id).to.equal(identity.id);
    const me = await t.call('GET', '/api/auth/ME', { headers: t.asUser(session.accessToken) });
    await expectProblem(me, 404, 'NOT_FOUND');
    expect((await t.call('GET', '/api/auth/me', { headers: t.asUser(session.accessToken) })).status).to.equal(200);
  });
});
