import { createHash } from 'node:crypto';
import { revocationKeys, verifyAccessToken, verifyRefreshToken } from '@platform/shared-types';
import { expectProblem } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { startTestService, type TestService } from '../helpers.ts';

describe('sessions: refresh rotation, reuse detection, logout, password change and reset (real stores)', () => {
  let t: TestService;
  before(async () => {
    t = await startTestService();
  });
  after(async () => {
    await t.stop();
  });

  const refresh = (refreshToken: string) => t.call('POST', '/api/auth/refresh', { body: { refreshToken } });

  it('rotates: a refresh returns a new pair in the same family and retires the old token', async () => {
    const user = await t.signupVerified();
    const first = await t.login(user);
    const response = await refresh(first.refreshToken);
    expect(response.status).to.equal(200);
    expect(response.headers.get('set-cookie')).to.match(/^refresh_token=/);
    const second = (await response.json()) as typeof first;
    expect(second.refreshToken).to.not.equal(first.refreshToken);
    expect(second.accessToken).to.not.equal(first.accessToken);
    const oldClaims = verifyRefreshToken(t.auth.refreshKeyring, first.refreshToken);
    const newClaims = verifyRefreshToken(t.auth.refreshKeyring, second.refreshToken);
    expect(newClaims.fam).to.equal(oldClaims.fam);
    expect(verifyAccessToken(t.auth.accessKeyring, second.accessToken).sub).to.equal(user.id);
    const stored = await t.service.stores.models.RefreshToken.find({ family: oldClaims.fam }).lean();
    expect(stored.map((doc) => doc.status).sort()).to.deep.equal(['active', 'rotated']);
    // only hashes are stored
    expect(JSON.stringify(stored)).to.not.include(first.refreshToken);
    expect(JSON.stringify(stored)).to.not.include(second.refreshToken);
  });

  it('takes the refresh token from the cookie too', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    const response = await t.call('POST', '/api/auth/refresh', { headers: { cookie: `refresh_token=${session.refreshToken}` } });
    expect(response.status).to.equal(200);
    await expectProblem(await t.call('POST', '/api/auth/refresh'), 401, 'UNAUTHENTICATED');
  });

  it('gives two refreshes racing with one token the same pair (two tabs stay signed in)', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    const [a, b] = await Promise.all([refresh(session.refreshToken), refresh(session.refreshToken)]);
    expect([a.status, b.status]).to.deep.equal([200, 200]);
    const [pairA, pairB] = (await Promise.all([a.json(), b.json()])) as Array<{ refreshToken: string; accessToken: string }>;
    expect(pairA?.refreshToken).to.equal(pairB?.refreshToken);
    expect(pairA?.accessToken).to.equal(pairB?.accessToken);
    // a late second tab within the grace window also gets it, and the family stays usable
    const late = (await (await refresh(session.refreshToken)).json()) as { refreshToken: string };
    expect(late.refreshToken).to.equal(pairA?.refreshToken);
    expect((await refresh(pairA?.refreshToken as string)).status).to.equal(200);
    const fam = verifyRefreshToken(t.auth.refreshKeyring, session.refreshToken).fam;
    expect(await t.service.stores.models.RefreshToken.countDocuments({ family: fam, status: 'active' })).to.equal(1);
  });

  it('keeps one winner when ten refreshes race with one token', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(session.refreshToken)));
    expect(responses.map((r) => r.status)).to.deep.equal(Array(10).fill(200));
    const tokens = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { refreshToken: string }).refreshToken)));
    expect(tokens.size).to.equal(1);
    const fam = verifyRefreshToken(t.auth.refreshKeyring, session.refreshToken).fam;
    expect(await t.service.stores.models.RefreshToken.countDocuments({ family: fam, status: 'active' })).to.equal(1);
  });

  it('treats a retired token presented after the grace window as reuse: the whole family dies (TOKEN_REUSED)', async () => {
    const user = await t.signupVerified();
    const stolen = await t.login(user);
    const rotated = (await (await refresh(stolen.refreshToken)).json()) as { refreshToken: string; accessToken: string };
    // end the 10 s grace window instead of sleeping: its Redis key is what expires
    const fam = verifyRefreshToken(t.auth.refreshKeyring, stolen.refreshToken).fam;
    const hash = createHash('sha256').update(stolen.refreshToken).digest('hex');
    expect(await t.redis.pttl(`${t.config.REDIS_KEY_PREFIX}rotated:${hash}`)).to.be.within(1, 10_001);
    await t.redis.del(`${t.config.REDIS_KEY_PREFIX}rotated:${hash}`);

    await expectProblem(await refresh(stolen.refreshToken), 401, 'TOKEN_REUSED');
    // the legitimate holder's newer token is dead too, and its access token is on the gateway's list
    await expectProblem(await refresh(rotated.refreshToken), 401, 'TOKEN_REVOKED');
    expect(await t.gatewayRefuses(rotated.accessToken)).to.equal(true);
    expect(await t.service.stores.models.RefreshToken.countDocuments({ family: fam, status: 'active' })).to.equal(0);
    // other sessions of the user are untouched
    const other = await t.login(user);
    expect((await refresh(other.refreshToken)).status).to.equal(200);
  });

  it('refuses forged, expired and access tokens as refresh tokens', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    await expectProblem(await refresh(session.accessToken), 401, 'UNAUTHENTICATED');
    await expectProblem(await refresh(`${session.refreshToken.slice(0, -2)}xx`), 401, 'UNAUTHENTICATED');
    const short = await startTestService({ SWEEP_INTERVAL_SECONDS: '1' });
    try {
      const other = await short.signupVerified();
      const shortSession = await short.login(other);
      // expire the stored record instead of waiting for the JWT
      await short.service.stores.models.RefreshToken.updateMany({}, { $set: { expiresAt: new Date(Date.now() - 1000) } });
      await expectProblem(await short.refresh(shortSession.refreshToken), 401, 'TOKEN_EXPIRED');
      // the periodic sweep (every second here) deletes it: bounded poll
      const deadline = Date.now() + 5_000;
      while ((await short.service.stores.models.RefreshToken.countDocuments({})) > 0) {
        if (Date.now() > deadline) throw new Error('expired refresh token not swept');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await expectProblem(await short.refresh(shortSession.refreshToken), 401, 'TOKEN_REVOKED');
    } finally {
      await short.stop();
    }
  });

  it('logout revokes the family and the current access jti (with a TTL), and emits user.logged_out', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    const other = await t.login(user);
    const response = await t.call('POST', '/api/auth/logout', {
      headers: { ...t.asUser(session.accessToken), cookie: `refresh_token=${session.refreshToken}` },
    });
    expect(response.status).to.equal(204);
    expect(response.headers.get('set-cookie')).to.match(/refresh_token=;/);
    const jti = verifyAccessToken(t.auth.accessKeyring, session.accessToken).jti;
    const ttl = await t.redis.ttl(revocationKeys.jti(jti));
    expect(ttl).to.be.greaterThan(0);
    expect(ttl).to.be.at.most(t.config.ACCESS_TOKEN_TTL_SECONDS + 30);
    expect(await t.gatewayRefuses(session.accessToken)).to.equal(true);
    await expectProblem(await refresh(session.refreshToken), 401, 'TOKEN_REVOKED');
    // the other session lives on
    expect(await t.gatewayRefuses(other.accessToken)).to.equal(false);
    expect((await refresh(other.refreshToken)).status).to.equal(200);
    const events = await t.events();
    expect(events.some((event) => event.type === 'user.logged_out' && event.user.id === user.id)).to.equal(true);
  });

  it('logout without the refresh token still finds the family from the access token', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    expect((await t.call('POST', '/api/auth/logout', { headers: t.asUser(session.accessToken) })).status).to.equal(204);
    await expectProblem(await refresh(session.refreshToken), 401, 'TOKEN_REVOKED');
  });

  it('logout-all revokes every family and sets revoked:before', async () => {
    const user = await t.signupVerified();
    const one = await t.login(user);
    const two = await t.login(user);
    expect((await t.call('POST', '/api/auth/logout-all', { headers: t.asUser(one.accessToken) })).status).to.equal(204);
    expect(Number(await t.redis.get(revocationKeys.before(user.id)))).to.be.at.least(verifyAccessToken(t.auth.accessKeyring, two.accessToken).iat);
    for (const session of [one, two]) {
      await expectProblem(await refresh(session.refreshToken), 401, 'TOKEN_REVOKED');
      expect(await t.gatewayRefuses(session.accessToken)).to.equal(true);
    }
  });

  it('change-password needs the current password, revokes other sessions and returns a fresh pair', async () => {
    const user = await t.signupVerified();
    const current = await t.login(user);
    const other = await t.login(user);
    const headers = t.asUser(current.accessToken);
    await expectProblem(
      await t.call('POST', '/api/auth/change-password', { headers, body: { currentPassword: 'not my password!', newPassword: 'a brand new passphrase' } }),
      401,
      'INVALID_CREDENTIALS',
    );
    await expectProblem(
      await t.call('POST', '/api/auth/change-password', { headers, body: { currentPassword: user.password, newPassword: 'qwertyuiop123' } }),
      400,
      'VALIDATION_FAILED',
    );
    const response = await t.call('POST', '/api/auth/change-password', {
      headers,
      body: { currentPassword: user.password, newPassword: 'a brand new passphrase' },
    });
    expect(response.status).to.equal(200);
    const fresh = (await response.json()) as { accessToken: string; refreshToken: string };
    for (const old of [current, other]) {
      expect(await t.gatewayRefuses(old.accessToken)).to.equal(true);
      await expectProblem(await refresh(old.refreshToken), 401, 'TOKEN_REVOKED');
    }
    expect(await t.gatewayRefuses(fresh.accessToken)).to.equal(false);
    expect((await refresh(fresh.refreshToken)).status).to.equal(200);
    await expectProblem(await t.call('POST', '/api/auth/login', { body: { email: user.email, password: user.password } }), 401, 'INVALID_CREDENTIALS');
    expect((await t.call('POST', '/api/auth/login', { body: { email: user.email, password: 'a brand new passphrase' } })).status).to.equal(200);
    expect((await t.events()).some((event) => event.type === 'user.password_changed' && event.user.id === user.id)).to.equal(true);
  });

  it('reset-password: single-use token from the mail, revokes every session (the gateway refuses old tokens)', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    expect((await t.call('POST', '/api/auth/forgot-password', { body: { email: user.email } })).status).to.equal(202);
    const token = await t.mailToken(user.email, 'reset-password');
    await expectProblem(await t.call('POST', '/api/auth/reset-password', { body: { token, password: user.username } }), 400, 'VALIDATION_FAILED');
    const reset = await t.call('POST', '/api/auth/reset-password', { body: { token, password: 'reset to this passphrase' } });
    expect(reset.status).to.equal(204);
    // the keys the gateway reads are set
    const claims = verifyAccessToken(t.auth.accessKeyring, session.accessToken);
    expect(await t.redis.get(revocationKeys.jti(claims.jti))).to.equal('1');
    expect(Number(await t.redis.get(revocationKeys.before(user.id)))).to.be.at.least(claims.iat);
    expect(await t.gatewayRefuses(session.accessToken)).to.equal(true);
    await expectProblem(await refresh(session.refreshToken), 401, 'TOKEN_REVOKED');
    await expectProblem(await t.call('POST', '/api/auth/reset-password', { body: { token, password: 'another new passphrase' } }), 400, 'VALIDATION_FAILED');
    expect((await t.call('POST', '/api/auth/login', { body: { email: user.email, password: 'reset to this passphrase' } })).status).to.equal(200);
  });

  it('lets only one of two racing resets use a reset token', async () => {
    const user = await t.signupVerified();
    await t.call('POST', '/api/auth/forgot-password', { body: { email: user.email } });
    const token = await t.mailToken(user.email, 'reset-password');
    const results = await Promise.all(
      ['first racing passphrase', 'second racing passphrase'].map((password) => t.call('POST', '/api/auth/reset-password', { body: { token, password } })),
    );
    expect(results.map((r) => r.status).sort()).to.deep.equal([204, 400]);
  });

  it('refuses an expired reset token', async () => {
    const user = await t.signupVerified();
    await t.call('POST', '/api/auth/forgot-password', { body: { email: user.email } });
    const token = await t.mailToken(user.email, 'reset-password');
    await t.service.stores.models.OneTimeToken.updateMany({ userId: user.id, kind: 'reset-password' }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    await expectProblem(await t.call('POST', '/api/auth/reset-password', { body: { token, password: 'reset to this passphrase' } }), 400, 'VALIDATION_FAILED');
  });
});
