import { expectProblem } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { addressKey } from '../../src/features/sessions/login-lockout.ts';
import { startTestService, type TestService } from '../helpers.ts';

/**
 * The gateway replaces any client X-Forwarded-For with the address it saw, so these requests carry what the
 * gateway would send for clients at different addresses (e2e/scenarios/lockout-gateway.test.ts goes through it).
 */
describe('login lockout per account and client address, with an account-wide limit (real stores)', () => {
  let t: TestService;
  const ACCOUNT_MAX = 12;

  before(async () => {
    t = await startTestService({ LOGIN_ACCOUNT_MAX_FAILURES: String(ACCOUNT_MAX) });
  });
  after(async () => {
    await t.stop();
  });

  const loginFrom = (address: string, body: Record<string, string>) => t.call('POST', '/api/auth/login', { body, headers: { 'x-forwarded-for': address } });

  async function failFrom(address: string, email: string, times: number) {
    for (let i = 0; i < times; i++) await expectProblem(await loginFrom(address, { email, password: `wrong guess ${i}` }), 401, 'INVALID_CREDENTIALS');
  }

  it("an attacker's 5 failures lock the attacker's address, not the owner at another address", async () => {
    const owner = await t.signupVerified();
    await failFrom('203.0.113.7', owner.email, 5);
    const attacker = await loginFrom('203.0.113.7', { email: owner.email, password: owner.password });
    expect(Number(attacker.headers.get('retry-after'))).to.be.greaterThan(0);
    await expectProblem(attacker, 423, 'ACCOUNT_LOCKED');
    // the username spelling of the same account is locked for that address too
    await expectProblem(await loginFrom('203.0.113.7', { username: owner.username, password: owner.password }), 423, 'ACCOUNT_LOCKED');
    const ownerLogin = await loginFrom('198.51.100.2', { email: owner.email, password: owner.password });
    expect(ownerLogin.status).to.equal(200);
  });

  it('IPv6 clients are counted per /64, so rotating addresses inside one prefix gives no fresh attempts', async () => {
    expect(addressKey('2001:db8:1:2::5')).to.equal(addressKey('2001:0db8:0001:0002:ffff:1:2:3'));
    expect(addressKey('::ffff:203.0.113.9')).to.equal('203.0.113.9');
    const owner = await t.signupVerified();
    for (let i = 0; i < 5; i++) {
      await expectProblem(await loginFrom(`2001:db8:1:2::${i + 1}`, { email: owner.email, password: `wrong guess ${i}` }), 401, 'INVALID_CREDENTIALS');
    }
    await expectProblem(await loginFrom('2001:db8:1:2::99', { email: owner.email, password: owner.password }), 423, 'ACCOUNT_LOCKED');
    expect((await loginFrom('2001:db8:1:3::1', { email: owner.email, password: owner.password })).status).to.equal(200);
  });

  it('failures spread over many addresses still lock the account for everyone at the account-wide limit', async () => {
    const owner = await t.signupVerified();
    for (let a = 0; a < ACCOUNT_MAX / 3; a++) await failFrom(`192.0.2.${a + 10}`, owner.email, 3);
    await expectProblem(await loginFrom('198.51.100.77', { email: owner.email, password: owner.password }), 423, 'ACCOUNT_LOCKED');
  });

  it('unknown accounts lock alike: per address, and the 423 looks the same', async () => {
    const ghost = `nobody_${Date.now()}@example.test`;
    await failFrom('203.0.113.50', ghost, 5);
    await expectProblem(await loginFrom('203.0.113.50', { email: ghost, password: 'any password here' }), 423, 'ACCOUNT_LOCKED');
    await expectProblem(await loginFrom('203.0.113.51', { email: ghost, password: 'any password here' }), 401, 'INVALID_CREDENTIALS');
  });

  it('a successful password reset clears the address locks and the account-wide lock', async () => {
    const owner = await t.signupVerified();
    await failFrom('203.0.113.8', owner.email, 5);
    for (let a = 0; a < ACCOUNT_MAX - 5; a++) await failFrom(`192.0.2.${a + 100}`, owner.email, 1);
    await expectProblem(await loginFrom('203.0.113.8', { email: owner.email, password: owner.password }), 423, 'ACCOUNT_LOCKED');
    await expectProblem(await loginFrom('198.51.100.3', { email: owner.email, password: owner.password }), 423, 'ACCOUNT_LOCKED');

    expect((await t.call('POST', '/api/auth/forgot-password', { body: { email: owner.email } })).status).to.equal(202);
    const token = await t.mailToken(owner.email, 'reset-password');
    const password = `${owner.password} after reset`;
    expect((await t.call('POST', '/api/auth/reset-password', { body: { token, password } })).status).to.be.within(200, 204);

    expect((await loginFrom('198.51.100.3', { email: owner.email, password })).status).to.equal(200);
    expect((await loginFrom('203.0.113.8', { email: owner.email, password })).status).to.equal(200);
  });

  it('takes the address the gateway appended (the last X-Forwarded-For entry), not one the client put before it', async () => {
    const owner = await t.signupVerified();
    // each attempt claims to come from the owner's address; the entry the gateway wrote is the attacker's
    for (let i = 0; i < 5; i++) {
      await expectProblem(await loginFrom(`198.51.100.4, 203.0.113.9`, { email: owner.email, password: `wrong guess ${i}` }), 401, 'INVALID_CREDENTIALS');
    }
    await expectProblem(await loginFrom('203.0.113.9', { email: owner.email, password: owner.password }), 423, 'ACCOUNT_LOCKED');
    expect((await loginFrom('198.51.100.4', { email: owner.email, password: owner.password })).status).to.equal(200);
  });
});
