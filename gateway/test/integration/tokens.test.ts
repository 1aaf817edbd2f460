import { createHmac, generateKeyPairSync, randomUUID, sign as rsaSign } from 'node:crypto';
import { createKeyring, kidOf, revocationKeys, signAccessToken, signRefreshToken } from '@platform/shared-types';
import { connectRedis } from '@platform/shared-types/stores';
import { createTestAuth, expectProblem, storeUrls, testActor, testSecrets } from '@platform/shared-types/testing';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { runPrefix, startGateway, startUpstream, type TestGateway, type Upstream } from '../support/harness.ts';
import { testYaml } from '../support/test-config.ts';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Builds a JWT by hand, so a test can forge what no library would sign. */
function forge(header: Record<string, unknown>, payload: Record<string, unknown>, signer: (input: string) => string): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signer(input)}`;
}
const hmac = (algorithm: string, secret: string) => (input: string) => createHmac(algorithm, secret).update(input).digest('base64url');

describe('gateway: verify-token and revocation', () => {
  const secrets = { ...testSecrets(), JWT_ACCESS_SECRET_PREVIOUS: testSecrets().JWT_ACCESS_SECRET };
  const auth = createTestAuth(secrets);
  const secret = secrets.JWT_ACCESS_SECRET;
  const kid = kidOf(secret);
  let upstream: Upstream;
  let gw: TestGateway;
  let redis: Redis;

  const now = () => Math.floor(Date.now() / 1000);
  const claims = (overrides: Record<string, unknown> = {}) => {
    const actor = testActor('admin');
    return {
      sub: actor.userId,
      username: actor.username,
      email: actor.email,
      role: actor.role,
      type: 'access',
      jti: randomUUID(),
      iat: now(),
      exp: now() + 600,
      ...overrides,
    };
  };
  const call = (token: string | undefined, path = '/api/credits/balance') =>
    fetch(`${gw.url}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      yaml: testYaml({ prefix: runPrefix() }),
      env: { JWT_ACCESS_SECRET_PREVIOUS: secrets.JWT_ACCESS_SECRET_PREVIOUS },
      auth,
    });
    redis = await connectRedis(storeUrls().REDIS_URL);
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
    await redis?.quit();
  });

  it('accepts a valid token, and one signed with the previous secret (rotation)', async () => {
    expect((await call(auth.token(testActor()))).status).to.equal(200);
    const previous = createKeyring(secrets.JWT_ACCESS_SECRET_PREVIOUS);
    const actor = testActor();
    const old = signAccessToken(previous, { sub: actor.userId, username: actor.username, email: actor.email, role: actor.role });
    expect((await call(old)).status).to.equal(200);
  });

  const forgeries: Array<[string, () => string, string?]> = [
    ['no token at all', () => ''],
    ['garbage', () => 'not.a.jwt'],
    ['alg none', () => `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(claims())}.`],
    ['alg none with a signature', () => forge({ alg: 'none', kid }, claims(), hmac('sha256', secret))],
    ['HS512 with the right secret', () => forge({ alg: 'HS512', typ: 'JWT', kid }, claims(), hmac('sha512', secret))],
    ['RS256 header, HMAC with the HS secret', () => forge({ alg: 'RS256', typ: 'JWT', kid }, claims(), hmac('sha256', secret))],
    [
      'RS256 signed with a real RSA key',
      () => {
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        return forge({ alg: 'RS256', typ: 'JWT', kid }, claims(), (input) => rsaSign('sha256', Buffer.from(input), privateKey).toString('base64url'));
      },
    ],
    ['wrong secret', () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims(), hmac('sha256', testSecrets().JWT_ACCESS_SECRET))],
    ['unknown kid', () => forge({ alg: 'HS256', typ: 'JWT', kid: 'no-such-kid' }, claims(), hmac('sha256', secret))],
    ['no kid', () => forge({ alg: 'HS256', typ: 'JWT' }, claims(), hmac('sha256', secret))],
    [
      'refresh token used as access',
      () => {
        const actor = testActor();
        return signRefreshToken(
          createKeyring(secrets.JWT_REFRESH_SECRET),
          { sub: actor.userId, username: actor.username, email: actor.email, role: actor.role },
          { fam: 'f1' },
        );
      },
    ],
    [
      'refresh type signed with the access secret',
      () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ type: 'refresh', fam: 'f1' }), hmac('sha256', secret)),
    ],
    [
      'expired beyond tolerance',
      () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ iat: now() - 1000, exp: now() - 60 }), hmac('sha256', secret)),
      'TOKEN_EXPIRED',
    ],
    ['iat in the future', () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ iat: now() + 300, exp: now() + 900 }), hmac('sha256', secret))],
    ['missing sub', () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ sub: undefined }), hmac('sha256', secret))],
    ['missing role', () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ role: undefined }), hmac('sha256', secret))],
    ['unknown role', () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ role: 'root' }), hmac('sha256', secret))],
    ['missing jti', () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ jti: undefined }), hmac('sha256', secret))],
    ['missing exp', () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ exp: undefined }), hmac('sha256', secret))],
    ['missing type', () => forge({ alg: 'HS256', typ: 'JWT', kid }, claims({ type: undefined }), hmac('sha256', secret))],
    [
      'tampered payload',
      () => {
        const good = auth.token(testActor('enduser'));
        const [h, , s] = good.split('.');
        return `${h}.${b64(claims({ role: 'admin' }))}.${s}`;
      },
    ],
  ];

  for (const [name, make, code] of forgeries) {
    it(`refuses ${name} with a 401 problem before anything is proxied`, async () => {
      const before = upstream.seen.length;
      const token = make();
      const response = await call(token === '' ? undefined : token);
      const body = await expectProblem(response, 401, code ?? 'UNAUTHENTICATED');
      expect(body).not.to.have.property('stack');
      expect(response.headers.get('www-authenticate')).to.match(/^Bearer/);
      expect(upstream.seen.length).to.equal(before);
    });
  }

  it('refuses a revoked jti with TOKEN_REVOKED', async () => {
    const actor = testActor();
    const token = auth.token(actor);
    expect((await call(token)).status).to.equal(200);
    await redis.set(revocationKeys.jti(actor.jti as string), '1', 'EX', 60);
    await expectProblem(await call(token), 401, 'TOKEN_REVOKED');
    // another session of the same user is unaffected
    expect((await call(auth.token({ ...actor, jti: randomUUID() }))).status).to.equal(200);
  });

  it('refuses tokens issued before revoked:before, and accepts later ones', async () => {
    const actor = testActor();
    const token = auth.token(actor);
    expect((await call(token)).status).to.equal(200);
    await redis.set(revocationKeys.before(actor.userId), String(now() + 5), 'EX', 60);
    await expectProblem(await call(token), 401, 'TOKEN_REVOKED');
    const later = forge({ alg: 'HS256', typ: 'JWT', kid }, { ...claims({ iat: now() + 10, exp: now() + 600 }), sub: actor.userId }, hmac('sha256', secret));
    expect((await call(later)).status).to.equal(200);
    await redis.set(revocationKeys.before(actor.userId), String(now() - 3600), 'EX', 60);
    expect((await call(token)).status).to.equal(200);
  });

  it('lets public routes through without a token', async () => {
    const response = await fetch(`${gw.url}/api/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(response.status).to.equal(200);
  });
});
