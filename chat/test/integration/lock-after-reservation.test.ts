// The stream lock of a completion's new session is taken alongside its reservation (issue 13, first chunk). When
// the lock fails after accounting confirmed the reservation, the stream must not start, and nothing may be left
// behind: the reservation released with nothing charged, no session or message stored, the caller told why.
// The failure is a real one: a private Redis that refuses writes (out of memory) while it still answers reads.
import { PrivateRedis, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { fetch, type Platform, startPlatform } from '../support/harness.ts';

describe('chat /v1: the stream lock fails after the reservation was confirmed', () => {
  const redis = new PrivateRedis();
  let admin: Redis;
  let platform: Platform;
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;
  const db = () => platform.instances[0]?.stores.mongo.db;
  const complete = (user: ReturnType<typeof testActor>, content: string) =>
    fetch(url('/v1/chat/completions'), {
      method: 'POST',
      headers: platform.json(user),
      body: JSON.stringify({ model: 'local-dev', messages: [{ role: 'user', content }], stream: true }),
    });

  before(async function () {
    this.timeout(30_000);
    await redis.start();
    admin = new Redis(redis.url);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    platform = await startPlatform({ env: { REDIS_URL: redis.url } });
  });
  after(async () => {
    await platform?.stop();
    admin?.disconnect();
    await redis.destroy();
  });

  it('releases the reservation with nothing charged, stores nothing and answers 503 in OpenAI shape; the next completion streams', async function () {
    this.timeout(30_000);
    const user = testActor('enduser');
    // a first completion: it works, and teaches the instance the user's balance (the next one starts its provider early)
    const first = await complete(user, 'hello');
    expect(first.status).to.equal(200);
    expect(await first.text()).to.include('data: [DONE]');
    const sessionsBefore = await db()?.collection('sessions').countDocuments({ userId: user.userId });
    const messagesBefore = await db()?.collection('messages').countDocuments({ userId: user.userId });
    const balanceBefore = platform.accounting.balance(user.userId);
    const callsBefore = platform.accounting.calls.length;

    await admin.config('SET', 'maxmemory', '1'); // every write is refused from here on; reads still answer
    const refused = await complete(user, 'no lock for this one');
    const answer = (await refused.json()) as { error?: { message?: string; type?: string } };
    await admin.config('SET', 'maxmemory', '0');

    expect(refused.status, JSON.stringify(answer)).to.equal(503);
    expect(answer.error?.message).to.be.a('string');
    const later = platform.accounting.calls.slice(callsBefore).filter((c) => c.path.startsWith('/internal/streaming-sessions/'));
    expect(later.map((c) => [c.path, c.status])).to.deep.equal([
      ['/internal/streaming-sessions/initialize', 200],
      ['/internal/streaming-sessions/abort', 200],
    ]);
    const [reserved, released] = later as [(typeof later)[number], (typeof later)[number]];
    expect(released.body).to.deep.include({ reservationId: reserved.body.reservationId, inputTokens: 0, outputTokens: 0 });
    expect(platform.accounting.balance(user.userId)).to.equal(balanceBefore);
    expect(await db()?.collection('sessions').countDocuments({ userId: user.userId })).to.equal(sessionsBefore);
    expect(await db()?.collection('messages').countDocuments({ userId: user.userId })).to.equal(messagesBefore);

    const next = await complete(user, 'and now it works');
    expect(next.status).to.equal(200);
    expect(await next.text()).to.include('data: [DONE]');
  });
});
