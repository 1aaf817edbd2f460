// Security probes through the public gateway: no probe may get a 2xx it should not, and none a 5xx.
import { createHmac, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { createKeyring, signAccessToken, signRefreshToken } from '@platform/shared-types';
import { testSecrets } from '@platform/shared-types/testing';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { api, createUser, items, type Session, uniqueUser } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const SERVICES = ['auth', 'accounting', 'chat', 'monitoring'] as const;

/** Sends the request target byte for byte (fetch would resolve dot segments and %2e before sending). */
function rawGet(base: string, target: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: target, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
function forge(header: object, payload: object, secret: string): string {
  const unsigned = `${b64(header)}.${b64(payload)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

describe('security probes through the gateway', () => {
  let platform: Platform;
  let gw: string;
  let alice: Session;
  let bob: Session;
  let admin: Session;
  const seen: Array<{ probe: string; status: number }> = [];

  async function probe(name: string, method: string, path: string, options: Parameters<typeof api>[3] = {}) {
    const response = await api(gw, method, path, options);
    seen.push({ probe: name, status: response.status });
    expect(response.status, `${name}: ${JSON.stringify(response.body)}`).to.be.below(500);
    return response;
  }

  before(async function () {
    this.timeout(180_000);
    platform = await startPlatform();
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
    alice = await createUser(platform, 'enduser', 'alice');
    bob = await createUser(platform, 'enduser', 'bob');
  });
  after(async () => {
    await platform?.stop();
  });

  describe('forged tokens', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const claims = () => ({
      sub: alice.userId,
      username: alice.username,
      email: alice.email,
      role: 'admin',
      type: 'access',
      jti: randomUUID(),
      iat: now(),
      exp: now() + 600,
    });
    const cases: Record<string, () => string> = {
      'alg none': () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`,
      HS512: () =>
        jwt.sign(claims(), platform.secrets.JWT_ACCESS_SECRET, { algorithm: 'HS512', keyid: createKeyring(platform.secrets.JWT_ACCESS_SECRET).current.kid }),
      'RS256 header signed with the HS secret': () =>
        forge({ alg: 'RS256', kid: createKeyring(platform.secrets.JWT_ACCESS_SECRET).current.kid }, claims(), platform.secrets.JWT_ACCESS_SECRET),
      'wrong secret': () =>
        signAccessToken(createKeyring(testSecrets().JWT_ACCESS_SECRET), { sub: alice.userId, username: 'a', email: 'a@x.test', role: 'admin' }),
      'wrong kid': () => forge({ alg: 'HS256', kid: 'not-our-kid' }, claims(), platform.secrets.JWT_ACCESS_SECRET),
      'refresh used as access': () =>
        signRefreshToken(
          createKeyring(platform.secrets.JWT_REFRESH_SECRET),
          { sub: alice.userId, username: 'a', email: 'a@x.test', role: 'enduser' },
          { fam: 'f' },
        ),
      expired: () =>
        jwt.sign({ ...claims(), iat: now() - 3600, exp: now() - 600 }, createKeyring(platform.secrets.JWT_ACCESS_SECRET).current.key, {
          algorithm: 'HS256',
          keyid: createKeyring(platform.secrets.JWT_ACCESS_SECRET).current.kid,
        }),
      'iat in the future': () =>
        jwt.sign({ ...claims(), iat: now() + 600, exp: now() + 1200 }, createKeyring(platform.secrets.JWT_ACCESS_SECRET).current.key, {
          algorithm: 'HS256',
          keyid: createKeyring(platform.secrets.JWT_ACCESS_SECRET).current.kid,
        }),
      'missing claims': () => {
        const { role: _role, ...rest } = claims();
        return jwt.sign(rest, createKeyring(platform.secrets.JWT_ACCESS_SECRET).current.key, {
          algorithm: 'HS256',
          keyid: createKeyring(platform.secrets.JWT_ACCESS_SECRET).current.kid,
        });
      },
      garbage: () => 'not.a.token',
    };
    for (const [name, make] of Object.entries(cases)) {
      it(`refuses ${name} with 401`, async () => {
        for (const path of ['/api/auth/me', '/api/credits/balance', '/api/chat/sessions', '/api/admin/users', '/api/supervised-students']) {
          const response = await probe(name, 'GET', path, { token: make() });
          expect(response.status, `${name} on ${path}`).to.equal(401);
          expect(response.headers.get('content-type')).to.match(/problem\+json/);
        }
      });
    }
  });

  it('never lets spoofed identity headers through', async () => {
    const anonymous = await probe('spoof anonymous', 'GET', '/api/auth/me', {
      headers: { 'X-User-Id': admin.userId, 'X-User-Role': 'admin', 'x-identity-signature': 't=1,v1=00' },
    });
    expect(anonymous.status).to.equal(401);
    const asAlice = await probe('spoof with token', 'GET', '/api/auth/me', {
      token: alice.accessToken,
      headers: { 'X-User-Id': admin.userId, 'X-USER-ROLE': 'admin', 'x-username': admin.username, 'X-Service-Token': 'x' },
    });
    expect(asAlice.status).to.equal(200);
    expect(JSON.stringify(asAlice.body)).to.include(alice.userId);
    expect(JSON.stringify(asAlice.body)).not.to.include(admin.userId);
  });

  it('never routes /internal, in any spelling: the gateway itself refuses, and no service sees the request', async function () {
    this.timeout(30_000);
    const spellings = [
      '/internal/users?ids=x',
      '/INTERNAL/users',
      '/Internal/streaming-sessions/finalize',
      '/%69nternal/users',
      '/api/../internal/users',
      '/api/%2e%2e/internal/users',
      '/api/auth/%2e%2e/%2e%2e/internal/users',
      '//internal/users',
      '/api/auth/..%2f..%2finternal/users',
      '/api/auth/..%5c..%5cinternal/users',
      '/internal%2fusers',
      '/./internal/users',
      '/internal/',
    ];
    const logStart = Object.fromEntries(SERVICES.map((name) => [name, platform.logs(name).length]));
    const probeIds: string[] = [];
    for (const path of spellings) {
      const response = await rawGet(gw, path, { authorization: `Bearer ${admin.accessToken}` });
      seen.push({ probe: path, status: response.status });
      // the gateway's own answer (a service answering /internal without a service token would say 401)
      expect(response.status, path).to.equal(404);
      expect(String(response.headers['content-type']), path).to.match(/problem\+json/);
      const problem = JSON.parse(response.body) as { code: string; requestId: string };
      expect(problem.code, path).to.equal('NOT_FOUND');
      expect(problem.requestId, path).to.equal(response.headers['x-request-id']);
      probeIds.push(problem.requestId);
    }
    // one request each service surely sees, after the probes: once its log line is in, so are any earlier ones
    const sentinels = {
      auth: '/api/auth/me',
      accounting: '/api/credits/balance',
      chat: '/api/chat/sessions',
      monitoring: '/api/supervised-students',
    } satisfies Record<(typeof SERVICES)[number], string>;
    for (const name of SERVICES) {
      const response = await api(gw, 'GET', sentinels[name], { token: admin.accessToken });
      const id = response.headers.get('x-request-id') ?? '';
      const deadline = Date.now() + 10_000;
      while (
        !platform
          .logs(name)
          .slice(logStart[name])
          .some((line) => line.includes(id))
      ) {
        if (Date.now() > deadline) throw new Error(`${name} never logged the sentinel ${sentinels[name]} (${id})`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    for (const name of SERVICES) {
      const lines = platform.logs(name).slice(logStart[name]);
      // an /internal line without a verified calling service; the services' own calls (a price refresh, a user
      // lookup) name their caller and may run at any time
      const reached = lines.filter((line) => probeIds.some((id) => line.includes(id)) || (/"path":"\/internal/i.test(line) && !line.includes('"caller":"')));
      expect(reached, `${name} saw a probe`).to.deep.equal([]);
    }
  });

  it("does not show another user's resources by id", async () => {
    const session = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token: alice.accessToken, body: { modelId: 'local-dev' } });
    expect(session.status).to.equal(201);
    expect((await probe('other session', 'GET', `/api/chat/sessions/${session.body.session.id}`, { token: bob.accessToken })).status).to.equal(404);
    expect((await probe('other session delete', 'DELETE', `/api/chat/sessions/${session.body.session.id}`, { token: bob.accessToken })).status).to.equal(404);
    expect((await probe('other balance', 'GET', `/api/credits/balance?userId=${alice.userId}`, { token: bob.accessToken })).status).to.equal(403);
    expect((await probe('other transactions', 'GET', `/api/credits/transactions?userId=${alice.userId}`, { token: bob.accessToken })).status).to.equal(403);
    expect((await probe('other usage', 'GET', `/api/usage/stats?userId=${alice.userId}`, { token: bob.accessToken })).status).to.equal(403);
    // a file alice really uploaded: she can read it, bob gets the same 404 as for an id that does not exist
    const form = new FormData();
    form.append('file', new Blob(['alice private notes'], { type: 'text/plain' }), 'notes.txt');
    const uploaded = await fetch(`${gw}/api/chat/files`, { method: 'POST', headers: { authorization: `Bearer ${alice.accessToken}` }, body: form });
    expect(uploaded.status).to.equal(201);
    const fileId = ((await uploaded.json()) as { file: { id: string } }).file.id;
    expect((await api(gw, 'GET', `/api/chat/files/${fileId}`, { token: alice.accessToken })).status).to.equal(200);
    const otherFile = await probe('other file', 'GET', `/api/chat/files/${fileId}`, { token: bob.accessToken });
    expect(otherFile.status).to.equal(404);
    expect(JSON.stringify(otherFile.body)).not.to.include('alice private notes');
    expect((await probe('no such file', 'GET', '/api/chat/files/000000000000000000000000', { token: bob.accessToken })).status).to.equal(404);
    const bobFiles = await api(gw, 'GET', '/api/chat/files', { token: bob.accessToken });
    expect(items<{ id: string }>(bobFiles.body).map((file) => file.id)).not.to.include(fileId);
    expect((await probe('admin route as user', 'GET', '/api/admin/users', { token: bob.accessToken })).status).to.equal(403);
  });

  it('refuses mass assignment of role in signup and profile', async () => {
    const user = uniqueUser('mass');
    const signup = await probe('signup role', 'POST', '/api/auth/signup', { body: { ...user, role: 'admin' } });
    expect(signup.status).to.equal(400);
    const profile = await probe('profile role', 'PATCH', '/api/profile', { token: alice.accessToken, body: { role: 'admin' } });
    expect(profile.status).to.equal(400);
    const me = await api(gw, 'GET', '/api/auth/me', { token: alice.accessToken });
    expect(JSON.stringify(me.body)).to.include('"enduser"');
  });

  it('refuses injection objects before any query', async () => {
    const login = await probe('login injection', 'POST', '/api/auth/login', { body: { email: { $gt: '' }, password: { $ne: null } } });
    expect(login.status).to.equal(400);
    const search = await probe('search injection', 'GET', '/api/admin/users?search[$regex]=.*', { token: admin.accessToken });
    expect(search.status).to.be.oneOf([200, 400]);
    if (search.status === 200) {
      // taken as text, if at all: only users whose fields literally contain it (none here), never "everyone"
      const found = items<{ username: string; email: string; displayName?: string }>(search.body);
      const literal = found.filter((user) => [user.username, user.email, user.displayName ?? ''].some((field) => field.includes('.*')));
      expect(found, 'search[$regex]=.* matched users that do not contain ".*"').to.deep.equal(literal);
    }
    const allocate = await probe('allocate injection', 'POST', '/api/credits/allocate', {
      token: admin.accessToken,
      body: { userId: { $gt: '' }, credits: 5 },
    });
    expect(allocate.status).to.equal(400);
  });

  it('answers oversized, malformed and wrongly typed bodies with 413, 400, 415', async () => {
    const big = JSON.stringify({ username: 'x', email: 'x@x.test', password: 'p'.repeat(5 * 1024 * 1024) });
    expect((await probe('oversized', 'POST', '/api/auth/signup', { rawBody: big, headers: { 'content-type': 'application/json' } })).status).to.equal(413);
    expect((await probe('malformed', 'POST', '/api/auth/login', { rawBody: '{"email":', headers: { 'content-type': 'application/json' } })).status).to.equal(
      400,
    );
    expect(
      (
        await probe('wrong type', 'POST', '/api/auth/login', {
          rawBody: 'email=a&password=b',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        })
      ).status,
    ).to.equal(415);
    expect(
      (
        await probe('chat wrong type', 'POST', '/api/chat/sessions', {
          token: alice.accessToken,
          rawBody: '<x/>',
          headers: { 'content-type': 'application/xml' },
        })
      ).status,
    ).to.equal(415);
  });

  it('answered no probe with a 5xx', () => {
    expect(seen.filter((s) => s.status >= 500)).to.deep.equal([]);
    expect(seen.length).to.be.greaterThan(30);
  });
});
