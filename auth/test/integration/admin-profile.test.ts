import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { permissionsFor, revocationKeys, USER_EVENT_TYPES, userEvent, verifyAccessToken } from '@platform/shared-types';
import { expectProblem } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { createUserFromCli } from '../../src/cli/create-user.ts';
import { startTestService, type TestService } from '../helpers.ts';

describe('me, profile, admin, internal users, events and the create-user CLI (real stores)', () => {
  let t: TestService;
  let admin: { id: string; email: string; password: string; username: string };
  let adminSession: { accessToken: string };
  /** the environment the service runs with, as the CLI reads it */
  let env: Record<string, string>;

  before(async () => {
    t = await startTestService();
    env = Object.fromEntries(Object.entries(t.config).map(([name, value]) => [name, String(value)]));
    const identity = t.newIdentity('admin');
    const created = await createUserFromCli(
      ['--email', identity.email, '--username', identity.username, '--password', identity.password, '--role', 'admin'],
      env,
    );
    admin = { ...identity, id: created.id };
    adminSession = await t.login(admin);
  });
  after(async () => {
    await t.stop();
  });

  const asAdmin = () => t.asUser(adminSession.accessToken);

  it('create-user CLI: creates a verified user with a role, refuses duplicates and bad input with a clear error', async () => {
    const me = (await (await t.call('GET', '/api/auth/me', { headers: asAdmin() })).json()) as { user: Record<string, unknown> };
    expect(me.user).to.include({ id: admin.id, role: 'admin', emailVerified: true });
    const cli = fileURLToPath(new URL('../../src/cli/create-user.ts', import.meta.url));
    const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
    const duplicate = run(['--email', admin.email.toUpperCase(), '--username', 'someone_else', '--password', 'long enough passphrase', '--role', 'admin']);
    expect(duplicate.status).to.equal(3);
    expect(duplicate.stderr).to.match(/already registered/);
    const bad = run(['--email', 'x@example.test', '--username', 'ok_name', '--password', 'short', '--role', 'root']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/password/);
    expect(bad.stderr).to.match(/role/);
    const identity = t.newIdentity('clisup');
    const ok = run(['--email', identity.email, '--username', identity.username, '--password', identity.password, '--role', 'supervisor']);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/created supervisor/);
    expect((await t.login(identity)).user.role).to.equal('supervisor');
  });

  it('admin search: NUL is a 400, any other text (unicode, other control characters, regex metacharacters) a 200 (fuzzer finding)', async () => {
    const nul = encodeURIComponent('\u00f9w\u00b0%\u0000|x\u{230ab}6');
    await expectProblem(
      await t.call('GET', `/api/admin/users?search=${nul}&role=admin&status=active&page=384&limit=77`, { headers: asAdmin() }),
      400,
      'VALIDATION_FAILED',
    );
    for (const text of ['\u00f9w\u00b0%|x\u{230ab}6\u00e3\u{1cda8}=', 'a\u0001b\u007f', '.*(a+)+$', '[', '\\']) {
      const response = await t.call('GET', `/api/admin/users?search=${encodeURIComponent(text)}&page=384&limit=77`, { headers: asAdmin() });
      expect(response.status, text).to.equal(200);
    }
  });

  it('me and permissions come from the shared table', async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    const me = await t.call('GET', '/api/auth/me', { headers: t.asUser(session.accessToken) });
    expect(me.status).to.equal(200);
    const body = (await me.json()) as { user: { id: string }; profile: Record<string, unknown> };
    expect(body.user.id).to.equal(user.id);
    expect(body.profile).to.deep.equal({ displayName: null, bio: null, avatarUrl: null, preferences: {} });
    const permissions = (await (await t.call('GET', '/api/auth/permissions', { headers: t.asUser(session.accessToken) })).json()) as {
      role: string;
      permissions: unknown;
    };
    expect(permissions).to.deep.equal(JSON.parse(JSON.stringify({ role: 'enduser', permissions: permissionsFor('enduser') })));
    await expectProblem(await t.call('GET', '/api/auth/me'), 401, 'UNAUTHENTICATED');
  });

  it('token-info returns verified claims and key ids, never secret characters', async () => {
    const response = await t.call('GET', '/api/auth/token-info', { headers: asAdmin() });
    expect(response.status).to.equal(200);
    const text = await response.text();
    const body = JSON.parse(text) as { claims: { sub: string; type: string }; kid: string; currentKid: string };
    expect(body.claims).to.include({ sub: admin.id, type: 'access' });
    expect(body.kid).to.equal(t.auth.accessKeyring.current.kid);
    expect(body.currentKid).to.equal(body.kid);
    for (const secret of Object.values(t.auth.secrets)) {
      for (let i = 0; i + 8 <= secret.length; i += 8) expect(text).to.not.include(secret.slice(i, i + 8));
    }
  });

  it('profile: GET and a validated PATCH (strict: role refused, bad URL refused), emits user.updated', async () => {
    const user = await t.signupVerified();
    const headers = t.asUser((await t.login(user)).accessToken);
    const patch = (body: unknown) => t.call('PATCH', '/api/profile', { headers, body });
    await expectProblem(await patch({ role: 'admin' }), 400, 'VALIDATION_FAILED');
    await expectProblem(await patch({ displayName: 'Me', role: 'admin' }), 400, 'VALIDATION_FAILED');
    await expectProblem(await patch({ avatarUrl: 'javascript:alert(1)' }), 400, 'VALIDATION_FAILED');
    await expectProblem(await patch({ bio: 'x'.repeat(501) }), 400, 'VALIDATION_FAILED');
    await expectProblem(await patch({ preferences: { theme: 'neon' } }), 400, 'VALIDATION_FAILED');
    await expectProblem(await patch({ preferences: { $where: 'x' } }), 400, 'VALIDATION_FAILED');
    await expectProblem(await patch({ displayName: { $gt: '' } }), 400, 'VALIDATION_FAILED');
    await expectProblem(await patch({}), 400, 'VALIDATION_FAILED');
    const first = await patch({ displayName: 'Ada L.', bio: 'hi', avatarUrl: 'https://example.test/a.png', preferences: { theme: 'dark', language: 'en' } });
    expect(first.status).to.equal(200);
    const second = await patch({ preferences: { emailNotifications: false } });
    const body = (await second.json()) as { user: { displayName: string }; profile: Record<string, unknown> };
    expect(body.profile).to.deep.equal({
      displayName: 'Ada L.',
      bio: 'hi',
      avatarUrl: 'https://example.test/a.png',
      preferences: { theme: 'dark', language: 'en', emailNotifications: false },
    });
    expect(body.user.displayName).to.equal('Ada L.');
    const got = (await (await t.call('GET', '/api/profile', { headers })).json()) as { profile: { bio: string }; user: { role: string } };
    expect(got.profile.bio).to.equal('hi');
    expect(got.user.role).to.equal('enduser');
    expect((await t.events()).some((event) => event.type === 'user.updated' && event.user.id === user.id)).to.equal(true);
  });

  it('admin routes are refused to non-admins (403)', async () => {
    const user = await t.signupVerified();
    const headers = t.asUser((await t.login(user)).accessToken);
    await expectProblem(await t.call('GET', '/api/admin/users', { headers }), 403, 'FORBIDDEN');
    await expectProblem(await t.call('GET', `/api/admin/users/${admin.id}`, { headers }), 403, 'FORBIDDEN');
    await expectProblem(await t.call('PATCH', `/api/admin/users/${user.id}`, { headers, body: { role: 'admin' } }), 403, 'FORBIDDEN');
    const identity = t.newIdentity('nope');
    await expectProblem(await t.call('POST', '/api/admin/users', { headers, body: { ...identity, role: 'admin' } }), 403, 'FORBIDDEN');
  });

  it('admin lists with search, role filter and paging; gets one user; creates a verified user with a role', async () => {
    const prefix = `srch${Date.now().toString(36)}`;
    const created: string[] = [];
    for (const role of ['supervisor', 'enduser', 'enduser'] as const) {
      const identity = t.newIdentity(prefix);
      const response = await t.call('POST', '/api/admin/users', { headers: asAdmin(), body: { ...identity, role } });
      expect(response.status).to.equal(201);
      const { user } = (await response.json()) as { user: { id: string; role: string; emailVerified: boolean } };
      expect(user).to.include({ role, emailVerified: true });
      created.push(user.id);
    }
    const list = async (query: string) =>
      (await (await t.call('GET', `/api/admin/users?${query}`, { headers: asAdmin() })).json()) as {
        users: Array<{ id: string; role: string }>;
        total: number;
        page: number;
        limit: number;
      };
    const all = await list(`search=${prefix}`);
    expect(all.total).to.equal(3);
    expect(all.users.map((u) => u.id).sort()).to.deep.equal([...created].sort());
    const endusers = await list(`search=${prefix.toUpperCase()}&role=enduser`);
    expect(endusers.total).to.equal(2);
    const page2 = await list(`search=${prefix}&limit=2&page=2`);
    expect(page2).to.include({ total: 3, page: 2, limit: 2 });
    expect(page2.users).to.have.length(1);
    // regex characters in a search are literal
    expect((await list('search=.*')).total).to.equal(0);
    await expectProblem(await t.call('GET', '/api/admin/users?limit=1000', { headers: asAdmin() }), 400, 'VALIDATION_FAILED');
    await expectProblem(await t.call('GET', '/api/admin/users?role=root', { headers: asAdmin() }), 400, 'VALIDATION_FAILED');
    const one = await t.call('GET', `/api/admin/users/${created[0]}`, { headers: asAdmin() });
    expect(((await one.json()) as { user: { id: string } }).user.id).to.equal(created[0]);
    await expectProblem(await t.call('GET', '/api/admin/users/0123456789abcdef01234567', { headers: asAdmin() }), 404, 'NOT_FOUND');
    await expectProblem(await t.call('GET', '/api/admin/users/not-an-id', { headers: asAdmin() }), 400, 'VALIDATION_FAILED');
  });

  it("a role change revokes the user's tokens and emits user.role_changed; disabling blocks login and emits user.disabled", async () => {
    const user = await t.signupVerified();
    const session = await t.login(user);
    const response = await t.call('PATCH', `/api/admin/users/${user.id}`, { headers: asAdmin(), body: { role: 'supervisor' } });
    expect(response.status).to.equal(200);
    expect(((await response.json()) as { user: { role: string } }).user.role).to.equal('supervisor');
    expect(await t.gatewayRefuses(session.accessToken)).to.equal(true);
    expect(await t.redis.get(revocationKeys.before(user.id))).to.not.equal(null);
    await expectProblem(await t.refresh(session.refreshToken), 401, 'TOKEN_REVOKED');
    const again = await t.login(user);
    expect(verifyAccessToken(t.auth.accessKeyring, again.accessToken).role).to.equal('supervisor');

    const disable = await t.call('PATCH', `/api/admin/users/${user.id}`, { headers: asAdmin(), body: { status: 'disabled' } });
    expect(disable.status).to.equal(200);
    expect(await t.gatewayRefuses(again.accessToken)).to.equal(true);
    await expectProblem(await t.refresh(again.refreshToken), 401, 'TOKEN_REVOKED');
    await expectProblem(await t.call('POST', '/api/auth/login', { body: { email: user.email, password: user.password } }), 403, 'FORBIDDEN');
    await expectProblem(
      await t.call('PATCH', `/api/admin/users/${user.id}`, { headers: asAdmin(), body: { role: 'admin', extra: 1 } }),
      400,
      'VALIDATION_FAILED',
    );

    const events = (await t.events()).filter((event) => event.user.id === user.id);
    const roleChanged = events.find((event) => event.type === 'user.role_changed');
    expect(roleChanged).to.deep.include({ previousRole: 'enduser' });
    expect(roleChanged?.user.role).to.equal('supervisor');
    expect(events.find((event) => event.type === 'user.disabled')?.user.status).to.equal('disabled');
  });

  it('does not lose a role change to a concurrent profile edit of the same user', async () => {
    const user = await t.signupVerified();
    const headers = t.asUser((await t.login(user)).accessToken);
    for (let round = 0; round < 3; round++) {
      const role = round % 2 === 0 ? 'supervisor' : 'enduser';
      await Promise.all([
        t.call('PATCH', '/api/profile', { headers, body: { bio: `round ${round}` } }),
        t.call('PATCH', '/api/profile', { headers, body: { displayName: `Name ${round}` } }),
        t.call('PATCH', `/api/admin/users/${user.id}`, { headers: asAdmin(), body: { role } }),
      ]);
      const stored = await t.service.stores.models.User.findById(user.id).lean();
      expect({ role: stored?.role, bio: stored?.bio, displayName: stored?.displayName }).to.deep.equal({
        role,
        bio: `round ${round}`,
        displayName: `Name ${round}`,
      });
    }
  });

  it('the last active admin cannot demote or disable itself; with a second admin it can', async () => {
    // this run's database holds exactly one active admin (the CLI-created one)
    await expectProblem(await t.call('PATCH', `/api/admin/users/${admin.id}`, { headers: asAdmin(), body: { role: 'enduser' } }), 409, 'CONFLICT');
    await expectProblem(await t.call('PATCH', `/api/admin/users/${admin.id}`, { headers: asAdmin(), body: { status: 'disabled' } }), 409, 'CONFLICT');
    expect(await t.gatewayRefuses(adminSession.accessToken)).to.equal(false);

    const second = t.newIdentity('admin2');
    const created = (await (await t.call('POST', '/api/admin/users', { headers: asAdmin(), body: { ...second, role: 'admin' } })).json()) as {
      user: { id: string };
    };
    const secondSession = await t.login(second);
    const demote = await t.call('PATCH', `/api/admin/users/${created.user.id}`, { headers: t.asUser(secondSession.accessToken), body: { role: 'enduser' } });
    expect(demote.status).to.equal(200);
    // and now the first admin is the last one again
    await expectProblem(await t.call('PATCH', `/api/admin/users/${admin.id}`, { headers: asAdmin(), body: { role: 'supervisor' } }), 409, 'CONFLICT');

    // two admins demoting each other at the same instant: one change is refused, an active admin remains
    const third = t.newIdentity('admin3');
    const thirdUser = (await (await t.call('POST', '/api/admin/users', { headers: asAdmin(), body: { ...third, role: 'admin' } })).json()) as {
      user: { id: string };
    };
    const thirdSession = await t.login(third);
    const results = await Promise.all([
      t.call('PATCH', `/api/admin/users/${thirdUser.user.id}`, { headers: asAdmin(), body: { role: 'enduser' } }),
      t.call('PATCH', `/api/admin/users/${admin.id}`, { headers: t.asUser(thirdSession.accessToken), body: { role: 'enduser' } }),
    ]);
    expect(results.map((r) => r.status).sort()).to.deep.equal([200, 409]);
    expect(await t.service.stores.models.User.countDocuments({ role: 'admin', status: 'active' })).to.equal(1);
  });

  it('GET /internal/users needs a service token and returns public fields per the shared contract', async () => {
    const user = await t.signupVerified();
    await expectProblem(await t.call('GET', `/internal/users?ids=${user.id}`), 401, 'UNAUTHENTICATED');
    await expectProblem(await t.call('GET', `/internal/users?ids=${user.id}`, { headers: asAdmin() }), 401, 'UNAUTHENTICATED');
    const response = await t.call('GET', `/internal/users?ids=${user.id},${admin.id},unknown,0123456789abcdef01234567`, {
      headers: t.auth.serviceHeaders('monitoring', 'auth'),
    });
    expect(response.status).to.equal(200);
    const body = (await response.json()) as { users: Array<Record<string, unknown>> };
    expect(body.users.map((u) => u.id).sort()).to.deep.equal([user.id, admin.id].sort());
    const one = body.users.find((u) => u.id === user.id);
    expect(Object.keys(one ?? {}).sort()).to.deep.equal(['createdAt', 'email', 'emailVerified', 'id', 'role', 'status', 'username']);
    await expectProblem(await t.call('GET', '/internal/users', { headers: t.auth.serviceHeaders('monitoring', 'auth') }), 400, 'VALIDATION_FAILED');
    const tooMany = Array.from({ length: 201 }, (_, i) => i.toString(16).padStart(24, '0')).join(',');
    await expectProblem(
      await t.call('GET', `/internal/users?ids=${tooMany}`, { headers: t.auth.serviceHeaders('monitoring', 'auth') }),
      400,
      'VALIDATION_FAILED',
    );
  });

  it('appends user lifecycle events to the configured stream, each valid per the shared schema with a unique eventId', async () => {
    const events = await t.events();
    for (const event of events) userEvent.parse(event);
    expect(new Set(events.map((event) => event.eventId)).size).to.equal(events.length);
    const types = new Set(events.map((event) => event.type));
    for (const type of ['user.registered', 'user.verified', 'user.updated', 'user.role_changed', 'user.disabled'] as const) {
      expect(types.has(type), type).to.equal(true);
      expect(USER_EVENT_TYPES).to.include(type);
    }
    const entries = await t.redis.xrange(t.config.USER_EVENTS_STREAM, '-', '+', 'COUNT', 1);
    expect(entries[0]?.[1][0]).to.equal('event');
  });
});
