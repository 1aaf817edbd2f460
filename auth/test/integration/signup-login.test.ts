import { expectProblem } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { startTestService, type TestService } from '../helpers.ts';

describe('signup, email verification and login (real stores)', () => {
  let t: TestService;
  before(async () => {
    t = await startTestService();
  });
  after(async () => {
    await t.stop();
  });

  it('signs up (201), mails a verification token, refuses login until verified (403), then logs in', async () => {
    const identity = t.newIdentity();
    const signup = await t.call('POST', '/api/auth/signup', { body: identity });
    expect(signup.status).to.equal(201);
    const { user } = (await signup.json()) as { user: Record<string, unknown> };
    expect(user).to.include({ username: identity.username, email: identity.email, role: 'enduser', status: 'active', emailVerified: false });
    expect(user).to.not.have.property('passwordHash');

    await expectProblem(await t.call('POST', '/api/auth/login', { body: { email: identity.email, password: identity.password } }), 403, 'EMAIL_NOT_VERIFIED');

    const mail = t.mails().find((m) => m.to === identity.email);
    expect(mail?.subject).to.be.a('string');
    expect(mail?.text).to.include(mail?.meta.token);
    const verify = await t.call('POST', '/api/auth/verify-email', { body: { token: mail?.meta.token } });
    expect(verify.status).to.equal(200);
    expect(((await verify.json()) as { user: { emailVerified: boolean } }).user.emailVerified).to.equal(true);
    // single use
    await expectProblem(await t.call('POST', '/api/auth/verify-email', { body: { token: mail?.meta.token } }), 400, 'VALIDATION_FAILED');

    const login = await t.call('POST', '/api/auth/login', { body: { email: identity.email.toUpperCase(), password: identity.password } });
    expect(login.status).to.equal(200);
    const session = (await login.json()) as { accessToken: string; refreshToken: string; expiresIn: number; user: { id: string } };
    expect(session.expiresIn).to.equal(t.config.ACCESS_TOKEN_TTL_SECONDS);
    expect(session.user.id).to.be.a('string');
    const cookie = login.headers.get('set-cookie') ?? '';
    expect(cookie).to.match(/^refresh_token=/);
    expect(cookie).to.match(/HttpOnly/i);
    expect(cookie).to.match(/SameSite=Strict/i);
    expect(cookie).to.match(/Path=\/api\/auth/i);
    expect(cookie).to.match(/Secure/i); // NODE_ENV=test is not development

    const byName = await t.call('POST', '/api/auth/login', { body: { username: identity.username.toUpperCase(), password: identity.password } });
    expect(byName.status).to.equal(200);
  });

  it('leaves no user behind when the verification mail cannot be sent', async () => {
    const broken = await startTestService({ MAIL_DIR: '/dev/null/not-a-dir' });
    try {
      const identity = broken.newIdentity('nomail');
      await expectProblem(await broken.call('POST', '/api/auth/signup', { body: identity }), 500, 'INTERNAL');
      expect(await broken.service.stores.models.User.countDocuments({})).to.equal(0);
      expect(await broken.service.stores.models.OneTimeToken.countDocuments({})).to.equal(0);
      expect(await broken.events()).to.deep.equal([]);
    } finally {
      await broken.stop();
    }
  });

  it('accepts /api/auth/register as an alias of signup', async () => {
    const response = await t.call('POST', '/api/auth/register', { body: t.newIdentity('reg') });
    expect(response.status).to.equal(201);
  });

  it('refuses duplicate usernames and emails, in any case, with 409', async () => {
    const identity = t.newIdentity('dup');
    expect((await t.call('POST', '/api/auth/signup', { body: identity })).status).to.equal(201);
    const other = t.newIdentity('other');
    await expectProblem(await t.call('POST', '/api/auth/signup', { body: { ...other, username: identity.username.toUpperCase() } }), 409, 'CONFLICT');
    await expectProblem(await t.call('POST', '/api/auth/signup', { body: { ...other, email: `  ${identity.email.toUpperCase()}` } }), 409, 'CONFLICT');
    // two racing signups for one name: exactly one wins (the unique index decides)
    const racer = t.newIdentity('race');
    const results = await Promise.all([
      t.call('POST', '/api/auth/signup', { body: racer }),
      t.call('POST', '/api/auth/signup', { body: { ...racer, email: `x${racer.email}` } }),
    ]);
    expect(results.map((r) => r.status).sort()).to.deep.equal([201, 409]);
    expect(await t.service.stores.models.User.countDocuments({ usernameKey: racer.username.toLowerCase() })).to.equal(1);
  });

  it('validates signup bodies: unknown fields (role), bad usernames, weak passwords; nothing is written', async () => {
    const identity = t.newIdentity('val');
    const refuse = async (body: unknown) => expectProblem(await t.call('POST', '/api/auth/signup', { body }), 400, 'VALIDATION_FAILED');
    await refuse({ ...identity, role: 'admin' });
    await refuse({ ...identity, username: 'ab' });
    await refuse({ ...identity, username: 'a'.repeat(33) });
    await refuse({ ...identity, username: 'bad name' });
    await refuse({ ...identity, username: 'emoji😀' });
    await refuse({ ...identity, email: 'not-an-email' });
    await refuse({ ...identity, password: 'short1234' });
    await refuse({ ...identity, password: 'x'.repeat(129) });
    await refuse({ ...identity, password: identity.username });
    await refuse({ ...identity, password: identity.email.toUpperCase() });
    const common = await refuse({ ...identity, password: 'Password123' });
    expect(JSON.stringify(common.errors)).to.include('too common');
    expect(await t.service.stores.models.User.countDocuments({ usernameKey: identity.username.toLowerCase() })).to.equal(0);
  });

  it('rejects injection objects with VALIDATION_FAILED before any query', async () => {
    const mongo = t.service.stores.mongo;
    const queries: string[] = [];
    // mongoose reports every collection call made through this connection while the hostile requests run; the
    // event outbox's relay polls on its own timer and is not one of the requests' queries
    mongo.set('debug', (collection: string, method: string) => {
      if (collection !== 'user_event_outbox') queries.push(`${collection}.${method}`);
    });
    try {
      for (const [path, body] of [
        ['/api/auth/login', { email: { $gt: '' }, password: 'whatever-password' }],
        ['/api/auth/login', { username: { $ne: null }, password: { $gt: '' } }],
        ['/api/auth/signup', { username: { $gt: '' }, email: 'a@example.test', password: 'long enough password' }],
        ['/api/auth/forgot-password', { email: { $regex: '.*' } }],
        ['/api/auth/resend-verification', { email: ['a@example.test'] }],
        ['/api/auth/verify-email', { token: { $ne: 'x' } }],
        ['/api/auth/reset-password', { token: { $gt: '' }, password: 'long enough password' }],
        ['/api/auth/refresh', { refreshToken: { $gt: '' } }],
      ] as const) {
        await expectProblem(await t.call('POST', path, { body }), 400, 'VALIDATION_FAILED');
      }
      expect(queries).to.deep.equal([]);
      // the probe works: a well-formed login does reach the database
      await t.call('POST', '/api/auth/login', { body: { email: 'probe@example.test', password: 'whatever-password' } });
      expect(queries).to.not.deep.equal([]);
    } finally {
      mongo.set('debug', false);
    }
  });

  it('counts the whole password: two passwords sharing the first 72 bytes are different passwords', async () => {
    const identity = t.newIdentity('long');
    const prefix = 'é'.repeat(36); // 72 bytes in UTF-8, 36 characters
    const password = `${prefix}first-tail`;
    await t.signupVerified({ ...identity, password });
    expect((await t.call('POST', '/api/auth/login', { body: { email: identity.email, password } })).status).to.equal(200);
    await expectProblem(
      await t.call('POST', '/api/auth/login', { body: { email: identity.email, password: `${prefix}other-tail` } }),
      401,
      'INVALID_CREDENTIALS',
    );
    await expectProblem(await t.call('POST', '/api/auth/login', { body: { email: identity.email, password: prefix } }), 401, 'INVALID_CREDENTIALS');
  });

  it('answers unknown accounts and wrong passwords alike (401 INVALID_CREDENTIALS)', async () => {
    const known = await t.signupVerified();
    const wrong = await expectProblem(
      await t.call('POST', '/api/auth/login', { body: { email: known.email, password: 'not the password at all' } }),
      401,
      'INVALID_CREDENTIALS',
    );
    const unknown = await expectProblem(
      await t.call('POST', '/api/auth/login', { body: { email: 'nobody@example.test', password: 'not the password at all' } }),
      401,
      'INVALID_CREDENTIALS',
    );
    expect(wrong.detail).to.equal(unknown.detail);
  });

  it('locks an account after 5 failures (423), even for the right password, and looks the same for unknown accounts', async () => {
    const victim = await t.signupVerified();
    for (let i = 0; i < 5; i++) {
      await expectProblem(
        await t.call('POST', '/api/auth/login', { body: { email: victim.email, password: `wrong password ${i}` } }),
        401,
        'INVALID_CREDENTIALS',
      );
    }
    const locked = await t.call('POST', '/api/auth/login', { body: { username: victim.username, password: victim.password } });
    expect(Number(locked.headers.get('retry-after'))).to.be.greaterThan(0);
    await expectProblem(locked, 423, 'ACCOUNT_LOCKED');

    const ghost = 'ghost-user@example.test';
    for (let i = 0; i < 5; i++) {
      await expectProblem(await t.call('POST', '/api/auth/login', { body: { email: ghost, password: `wrong password ${i}` } }), 401, 'INVALID_CREDENTIALS');
    }
    await expectProblem(await t.call('POST', '/api/auth/login', { body: { email: ghost, password: 'any password here' } }), 423, 'ACCOUNT_LOCKED');
  });

  it('answers resend-verification and forgot-password with 202 whatever the email', async () => {
    const pending = t.newIdentity('pending');
    await t.call('POST', '/api/auth/signup', { body: pending });
    for (const email of [pending.email, 'nobody-here@example.test']) {
      const resend = await t.call('POST', '/api/auth/resend-verification', { body: { email } });
      expect(resend.status).to.equal(202);
      const forgot = await t.call('POST', '/api/auth/forgot-password', { body: { email } });
      expect(forgot.status).to.equal(202);
    }
    // the resend replaces the first token: the old one no longer verifies, the new one does
    const first = await t.mailToken(pending.email, 'verify-email', 1);
    const second = await t.mailToken(pending.email, 'verify-email', 2);
    expect(second).to.not.equal(first);
    await expectProblem(await t.call('POST', '/api/auth/verify-email', { body: { token: first } }), 400, 'VALIDATION_FAILED');
    expect((await t.call('POST', '/api/auth/verify-email', { body: { token: second } })).status).to.equal(200);
    // the sends run after the 202: wait until a mail asked for after the unknown-email requests has gone
    // out (it does more work than the lookup that finds no user), then there must be none to the unknown email
    const later = t.newIdentity('later');
    await t.call('POST', '/api/auth/signup', { body: later });
    await t.mailToken(later.email, 'verify-email');
    expect((await t.call('POST', '/api/auth/forgot-password', { body: { email: later.email } })).status).to.equal(202);
    await t.mailToken(later.email, 'reset-password');
    expect(t.mails().filter((mail) => mail.to === 'nobody-here@example.test')).to.have.length(0);
  });

  it('refuses an expired verification token', async () => {
    const identity = t.newIdentity('exp');
    await t.call('POST', '/api/auth/signup', { body: identity });
    const token = await t.mailToken(identity.email, 'verify-email');
    // move the expiry into the past instead of sleeping
    const user = await t.service.stores.models.User.findOne({ email: identity.email }).lean();
    await t.service.stores.models.OneTimeToken.updateMany({ userId: user?._id }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    await expectProblem(await t.call('POST', '/api/auth/verify-email', { body: { token } }), 400, 'VALIDATION_FAILED');
  });
});
