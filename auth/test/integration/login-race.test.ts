import { verifyAccessToken } from '@platform/shared-types';
import { expectProblem } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { createUserFromCli } from '../../src/cli/create-user.ts';
import type { PasswordHasher } from '../../src/lib/passwords.ts';
import { startTestService, type TestService } from '../helpers.ts';

/**
 * Holds the next bcrypt verify after it finished (with its real result) until the test releases it, so a change
 * can be made deterministically while a login is "in bcrypt". One-shot: later verifies run untouched.
 */
function holdNextVerify(passwords: PasswordHasher) {
  const real = passwords.verify;
  let entered!: () => void;
  let release!: () => void;
  const inBcrypt = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  passwords.verify = async (password, hash) => {
    passwords.verify = real;
    const result = await real(password, hash);
    entered();
    await released;
    return result;
  };
  return { inBcrypt, release, restore: () => (passwords.verify = real) };
}

/** Waits (bounded) until the millisecond clock has moved on, so two writes get distinct timestamps. */
async function clockPasses(): Promise<void> {
  const start = Date.now();
  while (Date.now() <= start) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('login racing a password change, disable or role change while bcrypt runs (real stores)', () => {
  let t: TestService;
  let adminHeaders: () => Record<string, string>;

  before(async () => {
    t = await startTestService();
    const identity = t.newIdentity('admin');
    const env = Object.fromEntries(Object.entries(t.config).map(([name, value]) => [name, String(value)]));
    await createUserFromCli(['--email', identity.email, '--username', identity.username, '--password', identity.password, '--role', 'admin'], env);
    const session = await t.login(identity);
    adminHeaders = () => t.asUser(session.accessToken);
  });
  after(async () => {
    await t.stop();
  });

  /** Starts a login with `password`, runs `change` while that login's bcrypt result is held, then lets it finish. */
  async function loginDuring(identity: { email: string }, password: string, change: () => Promise<void>) {
    const hold = holdNextVerify(t.service.stores.passwords);
    try {
      const login = t.call('POST', '/api/auth/login', { body: { email: identity.email, password } });
      await hold.inBcrypt;
      await change();
      hold.release();
      return await login;
    } finally {
      hold.restore();
    }
  }

  it('an old-password login in flight when the password is changed fails, and issues no usable family', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    const newPassword = `${user.password} changed`;
    const response = await loginDuring(user, user.password, async () => {
      const changed = await t.call('POST', '/api/auth/change-password', {
        headers: t.asUser(session.accessToken),
        body: { currentPassword: user.password, newPassword },
      });
      expect(changed.status).to.equal(200);
    });
    await expectProblem(response, 401, 'INVALID_CREDENTIALS');
    // the new password works, the old one does not
    await t.login({ email: user.email, password: newPassword });
    await expectProblem(await t.call('POST', '/api/auth/login', { body: { email: user.email, password: user.password } }), 401, 'INVALID_CREDENTIALS');
  });

  it('a login in flight when the password is reset fails', async () => {
    const user = await t.signupVerified();
    const response = await loginDuring(user, user.password, async () => {
      expect((await t.call('POST', '/api/auth/forgot-password', { body: { email: user.email } })).status).to.equal(202);
      const token = await t.mailToken(user.email, 'reset-password');
      const reset = await t.call('POST', '/api/auth/reset-password', { body: { token, password: `${user.password} reset` } });
      expect(reset.status).to.be.within(200, 204);
    });
    await expectProblem(response, 401, 'INVALID_CREDENTIALS');
  });

  it('a login in flight when an admin disables the account is refused with 403', async () => {
    const user = await t.signupVerified();
    const response = await loginDuring(user, user.password, async () => {
      const patched = await t.call('PATCH', `/api/admin/users/${user.id}`, { headers: adminHeaders(), body: { status: 'disabled' } });
      expect(patched.status).to.equal(200);
    });
    await expectProblem(response, 403, 'FORBIDDEN');
  });

  it('a login in flight when an admin demotes the account gets tokens of the new role only', async () => {
    const identity = t.newIdentity('sup');
    const env = Object.fromEntries(Object.entries(t.config).map(([name, value]) => [name, String(value)]));
    const created = await createUserFromCli(
      ['--email', identity.email, '--username', identity.username, '--password', identity.password, '--role', 'supervisor'],
      env,
    );
    const response = await loginDuring(identity, identity.password, async () => {
      const patched = await t.call('PATCH', `/api/admin/users/${created.id}`, { headers: adminHeaders(), body: { role: 'enduser' } });
      expect(patched.status).to.equal(200);
    });
    expect(response.status).to.equal(200);
    const body = (await response.json()) as { accessToken: string; refreshToken: string; user: { role: string } };
    expect(body.user.role).to.equal('enduser');
    expect(verifyAccessToken(t.auth.accessKeyring, body.accessToken).role).to.equal('enduser');
    const refreshed = await t.refresh(body.refreshToken);
    expect(refreshed.status).to.equal(200);
    expect(((await refreshed.json()) as { user: { role: string } }).user.role).to.equal('enduser');
  });

  it('refresh refuses a family that began before the last password change, even when its revocation was missed', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    await clockPasses();
    // A password change whose session revocation never ran (say auth crashed between the two writes).
    await t.service.stores.models.User.updateOne({ _id: user.id }, { $set: { passwordChangedAt: new Date() } });
    await expectProblem(await t.refresh(session.refreshToken), 401, 'TOKEN_REVOKED');
    // a family that begins after the change works
    await clockPasses();
    const fresh = await t.login(user);
    expect((await t.refresh(fresh.refreshToken)).status).to.equal(200);
  });
});
