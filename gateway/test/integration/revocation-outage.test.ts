import { createHmac, randomUUID } from 'node:crypto';
import { type AccessClaims, kidOf, revocationKeys, verifyAccessToken } from '@platform/shared-types';
import { connectRedis } from '@platform/shared-types/stores';
import { createTestAuth, expectProblem, storeUrls, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Redis } from 'ioredis';
// the real writer auth uses (keys plus the revocation stream, one MULTI)
import { revocationWriter } from '../../../auth/src/features/sessions/revocation.ts';
import { PrivateRedis, runPrefix, startGateway, startUpstream, type TestGateway, type Upstream, waitFor } from '../support/harness.ts';
import { testYaml } from '../support/test-config.ts';

const ACCESS_TTL_SECONDS = 15 * 60;

async function status(gw: TestGateway, token: string): Promise<number> {
  const response = await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}

describe('gateway: revocation survives a Redis outage (DESIGN section 5)', () => {
  const redis = new PrivateRedis({ persist: true });
  const auth = createTestAuth();
  let upstream: Upstream;
  let a: TestGateway;
  let b: TestGateway;
  let client: Redis;
  let writer: ReturnType<typeof revocationWriter>;
  const claimsOf = (token: string): AccessClaims => verifyAccessToken(auth.accessKeyring, token);

  before(async function () {
    this.timeout(30_000);
    await redis.start();
    upstream = await startUpstream();
    const yaml = testYaml({ prefix: runPrefix(), userLimit: 1000, failMode: 'open' });
    a = await startGateway({ upstreamUrl: upstream.url, redisUrl: redis.url, yaml, auth });
    b = await startGateway({ upstreamUrl: upstream.url, redisUrl: redis.url, yaml, auth });
    client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    writer = revocationWriter(client, ACCESS_TTL_SECONDS);
  });
  after(async () => {
    client?.disconnect();
    await a?.stop();
    await b?.stop();
    await upstream?.close();
    await redis.destroy();
  });

  it('refuses tokens revoked before the outage on every instance while Redis is down, serves valid ones, and uses Redis again after it returns', async function () {
    this.timeout(60_000);
    const loggedOut = auth.token(testActor());
    const allSessionsEnded = auth.token(testActor());
    const valid = auth.token(testActor());
    const later = auth.token(testActor());
    const gateways = [a, b];

    const loggedOutClaims = claimsOf(loggedOut);
    await writer.revokeJtis([{ jti: loggedOutClaims.jti, expiresAt: loggedOutClaims.exp }]);
    await writer.revokeBefore(claimsOf(allSessionsEnded).sub);
    // each instance's copy has learned both revocations from the stream
    for (const gw of gateways) {
      await waitFor(
        () => gw.gateway.revocations.mirror.isRevoked(claimsOf(loggedOut)) && gw.gateway.revocations.mirror.isRevoked(claimsOf(allSessionsEnded)),
        'the revocation copy of each gateway',
      );
      expect(await status(gw, loggedOut)).to.equal(401);
      expect(await status(gw, allSessionsEnded)).to.equal(401);
      expect(await status(gw, valid)).to.equal(200);
    }

    await redis.stop();
    for (const gw of gateways) await waitFor(() => gw.gateway.stores.redis.status !== 'ready', 'the gateway to see Redis gone');
    for (const gw of gateways) {
      // served from the in-memory limiter while Redis is down
      await waitFor(async () => (await status(gw, valid)) === 200, 'a valid token served during the outage');
      for (let round = 0; round < 3; round += 1) {
        await expectProblem(await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${loggedOut}` } }), 401, 'TOKEN_REVOKED');
        await expectProblem(await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${allSessionsEnded}` } }), 401, 'TOKEN_REVOKED');
        expect(await status(gw, valid)).to.equal(200);
      }
      expect(gw.gateway.stores.redis.status).to.not.equal('ready');
    }
    const metrics = await (await fetch(`${a.gateway.opsUrl}/metrics`)).text();
    expect(metrics).to.match(/gateway_redis_fallbacks_total [1-9]/);

    await redis.start();
    for (const gw of gateways) {
      await waitFor(() => gw.gateway.stores.redis.status === 'ready', 'the gateway to reconnect', 15_000, 50);
      await waitFor(async () => (await status(gw, valid)) === 200, 'service after Redis returns', 10_000, 50);
    }
    // shared state again: a key written straight into Redis (no stream entry, so no local copy knows it) is honoured by both
    const validClaims = claimsOf(valid);
    await client.set(revocationKeys.jti(validClaims.jti), '1', 'EX', 60);
    for (const gw of gateways) expect(await status(gw, valid)).to.equal(401);
    // and the feed runs again: a revocation made after the restart reaches each copy
    await writer.revokeBefore(claimsOf(later).sub);
    for (const gw of gateways) {
      expect(await status(gw, later)).to.equal(401);
      await waitFor(() => gw.gateway.revocations.mirror.isRevoked(claimsOf(later)), 'the copy to learn a revocation made after the restart', 10_000);
      expect(gw.gateway.revocations.mirror.isRevoked(claimsOf(loggedOut))).to.equal(true);
    }
  });

  it('refuses tokens (503) on an instance that started during the outage: it has no copy to vouch for them', async function () {
    this.timeout(60_000);
    await redis.stop();
    const fresh = await startGateway({ upstreamUrl: upstream.url, redisUrl: redis.url, yaml: testYaml({ prefix: runPrefix(), failMode: 'open' }), auth });
    try {
      await expectProblem(
        await fetch(`${fresh.url}/api/limited/x`, { headers: { authorization: `Bearer ${auth.token(testActor())}` } }),
        503,
        'UPSTREAM_UNAVAILABLE',
      );
      // requests without a token still run on in-memory limits
      const open = await fetch(`${fresh.url}/api/open/x`);
      await open.arrayBuffer();
      expect(open.status).to.equal(200);
      await redis.start();
      await waitFor(async () => (await status(fresh, auth.token(testActor()))) === 200, 'service once Redis is back', 15_000, 100);
    } finally {
      await fresh.stop();
      await redis.start().catch(() => undefined);
    }
  });
});

describe('gateway: revoked:before with sub-second precision (DESIGN section 5)', () => {
  const auth = createTestAuth();
  let upstream: Upstream;
  let gw: TestGateway;
  let redis: Redis;
  let writer: ReturnType<typeof revocationWriter>;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, yaml: testYaml({ prefix: runPrefix() }), auth });
    redis = await connectRedis(storeUrls().REDIS_URL);
    writer = revocationWriter(redis, ACCESS_TTL_SECONDS);
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
    await redis?.quit();
  });

  /** a token without `iatMs`, as issued before the claim existed */
  const legacyToken = (actor: ReturnType<typeof testActor>, iat: number) => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const payload = {
      sub: actor.userId,
      username: actor.username,
      email: actor.email,
      role: actor.role,
      type: 'access',
      jti: randomUUID(),
      iat,
      exp: iat + 600,
    };
    const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: kidOf(auth.secrets.JWT_ACCESS_SECRET) })}.${b64(payload)}`;
    return `${input}.${createHmac('sha256', auth.secrets.JWT_ACCESS_SECRET).update(input).digest('base64url')}`;
  };

  it('kills a token issued in the same second before logout-all, and keeps one issued after it', async function () {
    this.timeout(20_000);
    for (let attempt = 0; ; attempt += 1) {
      // start early in a second so both tokens and the revocation share it
      await waitFor(() => Date.now() % 1000 < 200, 'the start of a second', 2_000, 5);
      const actor = testActor();
      const before = auth.token(actor);
      await new Promise((resolve) => setTimeout(resolve, 5)); // distinct milliseconds (not a synchronisation)
      const revokedAt = await writer.revokeBefore(actor.userId);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const after = auth.token(actor);
      const iats = [verifyAccessToken(auth.accessKeyring, before).iat, Math.floor(revokedAt / 1000), verifyAccessToken(auth.accessKeyring, after).iat];
      if (new Set(iats).size !== 1) {
        if (attempt < 5) continue; // crossed a second boundary: try again
        throw new Error('could not issue both tokens in one second');
      }
      await expectProblem(await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${before}` } }), 401, 'TOKEN_REVOKED');
      expect(await status(gw, after)).to.equal(200);
      // a token without sub-second precision cannot show it came after: same second is dead, a later second lives
      await expectProblem(
        await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${legacyToken(actor, iats[0] as number)}` } }),
        401,
        'TOKEN_REVOKED',
      );
      expect(await status(gw, legacyToken(actor, (iats[0] as number) + 1))).to.equal(200);
      return;
    }
  });

  it('reads an old whole-second revoked:before value as covering its whole second', async () => {
    const actor = testActor();
    const token = auth.token(actor);
    const iat = verifyAccessToken(auth.accessKeyring, token).iat;
    await redis.set(revocationKeys.before(actor.userId), String(iat), 'EX', 60);
    await expectProblem(await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${token}` } }), 401, 'TOKEN_REVOKED');
    await redis.set(revocationKeys.before(actor.userId), String(iat - 1), 'EX', 60);
    expect(await status(gw, token)).to.equal(200);
  });
});
