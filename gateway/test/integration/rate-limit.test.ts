import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { PrivateRedis, runPrefix, startGateway, startUpstream, type TestGateway, type Upstream, waitFor } from '../support/harness.ts';
import { testYaml } from '../support/test-config.ts';

describe('gateway: rate limits in Redis', () => {
  let upstream: Upstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, yaml: testYaml({ prefix: runPrefix(), userLimit: 10 }) });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('lets exactly 10 of 50 parallel requests through a limit of 10', async () => {
    const token = gw.auth.token(testActor());
    const responses = await Promise.all(Array.from({ length: 50 }, () => fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${token}` } })));
    const statuses = responses.map((r) => r.status);
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    expect(statuses.filter((s) => s === 200)).to.have.length(10);
    expect(statuses.filter((s) => s === 429)).to.have.length(40);
  });

  it('answers RATE_LIMITED with Retry-After and RateLimit-* headers; other users are unaffected', async () => {
    const token = gw.auth.token(testActor());
    const first = await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${token}` } });
    expect(first.headers.get('ratelimit-limit')).to.equal('10');
    expect(first.headers.get('ratelimit-remaining')).to.equal('9');
    expect(Number(first.headers.get('ratelimit-reset'))).to.be.within(1, 60);
    for (let i = 0; i < 9; i++) await (await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer();
    const refused = await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${token}` } });
    const body = await expectProblem(refused, 429, 'RATE_LIMITED');
    const retryAfter = Number(refused.headers.get('retry-after'));
    // 10 per 60 s: the next slot opens about 6 s after the first request
    expect(retryAfter).to.be.within(1, 6);
    expect(body.retryAfter).to.equal(retryAfter);
    expect(refused.headers.get('ratelimit-remaining')).to.equal('0');
    const other = await fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${gw.auth.token(testActor())}` } });
    expect(other.status).to.equal(200);
  });

  it('keys login by IP plus identifier, and by IP alone, and forwards the body it read', async () => {
    const login = (email: string) =>
      fetch(`${gw.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: 'pw' }) });
    for (let i = 0; i < 3; i++) {
      const ok = await login('Victim@Example.test');
      expect(ok.status).to.equal(200);
      expect(((await ok.json()) as { body: string }).body).to.equal(JSON.stringify({ email: 'Victim@Example.test', password: 'pw' }));
    }
    await expectProblem(await login('victim@example.test'), 429, 'RATE_LIMITED');
    // a different identifier from the same IP still passes until the per-IP rule (5) is reached
    expect((await login('other@example.test')).status).to.equal(200);
    expect((await login('third@example.test')).status).to.equal(200);
    await expectProblem(await login('fourth@example.test'), 429, 'RATE_LIMITED');
  });

  it('caps concurrent streams per user and releases the slot when the stream ends', async () => {
    let finish: (() => void) | undefined;
    upstream.handle('/api/chat/sessions/s1/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: session\ndata: {}\n\n');
      finish = () => res.end('event: done\ndata: {}\n\n');
    });
    const token = gw.auth.token(testActor());
    const open = () => fetch(`${gw.url}/api/chat/sessions/s1/stream`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const first = await open();
    expect(first.status).to.equal(200);
    await expectProblem(await open(), 429, 'RATE_LIMITED');
    finish?.();
    await first.text();
    await waitFor(async () => {
      const again = await open();
      if (again.status === 200) {
        finish?.();
        await again.text();
        return true;
      }
      await again.arrayBuffer();
      return false;
    }, 'the stream slot to be released');
  });
});

describe('gateway: Redis stopped mid-run', () => {
  const redis = new PrivateRedis();
  let upstream: Upstream;
  let open: TestGateway;
  let closed: TestGateway;

  before(async function () {
    this.timeout(30_000);
    await redis.start();
    upstream = await startUpstream();
    const prefix = runPrefix();
    open = await startGateway({ upstreamUrl: upstream.url, redisUrl: redis.url, yaml: testYaml({ prefix, userLimit: 3, failMode: 'open' }) });
    closed = await startGateway({
      upstreamUrl: upstream.url,
      redisUrl: redis.url,
      yaml: testYaml({ prefix, userLimit: 3, failMode: 'closed' }),
      auth: open.auth,
    });
  });
  after(async () => {
    await open?.stop();
    await closed?.stop();
    await upstream?.close();
    await redis.stop();
  });

  const hit = (gw: TestGateway, token: string) =>
    fetch(`${gw.url}/api/limited/x`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });

  it('falls back as configured while Redis is down, and returns to Redis by itself', async function () {
    this.timeout(30_000);
    const token = open.auth.token(testActor());
    expect([await hit(open, token), await hit(open, token), await hit(open, token), await hit(open, token)]).to.deep.equal([200, 200, 200, 429]);

    await redis.stop();
    // fail-open: an in-memory limiter per instance takes over (fresh counts, same rule)
    const user = open.auth.token(testActor());
    await waitFor(async () => (await hit(open, user)) === 200, 'fail-open answer');
    expect([await hit(open, user), await hit(open, user), await hit(open, user)]).to.deep.equal([200, 200, 429]);
    // fail-closed: refuse rather than run unlimited and unrevoked
    const refused = await fetch(`${closed.url}/api/limited/x`, { headers: { authorization: `Bearer ${token}` } });
    await expectProblem(refused, 503, 'UPSTREAM_UNAVAILABLE');
    const metrics = await (await fetch(`${open.gateway.opsUrl}/metrics`)).text();
    expect(metrics).to.match(/gateway_rate_limit_decisions_total\{rule="user",decision="limited",source="memory"\} [1-9]/);

    await redis.start();
    const fresh = closed.auth.token(testActor());
    await waitFor(async () => (await hit(closed, fresh)) === 200, 'recovery after Redis restarts', 10_000, 100);
    // decisions are in Redis again: its key exists and both instances share the count
    const check = new Redis(redis.url);
    try {
      const keys = await check.keys('rltest:*');
      expect(keys.length).to.be.greaterThan(0);
    } finally {
      check.disconnect();
    }
    expect([await hit(open, fresh), await hit(open, fresh), await hit(closed, fresh)]).to.deep.equal([200, 200, 429]);
  });
});
