import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { RedisMutex, withLock } from '../../src/redis/mutex.ts';
import { connectRedis } from '../../src/stores/index.ts';

describe('RedisMutex against real Redis', () => {
  let redis: Redis;
  const key = () => `test:mutex:${randomUUID()}`;

  before(async () => {
    redis = await connectRedis(String(process.env.REDIS_URL));
  });
  after(() => redis.disconnect());

  it('lets one holder in at a time and names it by its owner token', async () => {
    const mutex = new RedisMutex(redis, { ttlMs: 5_000 });
    const k = key();
    const first = await mutex.tryAcquire(k);
    expect(first).to.be.a('string');
    expect(await mutex.tryAcquire(k)).to.equal(undefined);
    expect(await redis.get(k)).to.equal(first);
    expect(await mutex.release(k, String(first))).to.equal(true);
    expect(await mutex.isHeld(k)).to.equal(false);
  });

  it('an expired lock taken by another holder is neither released nor extended by the old owner', async () => {
    const mutex = new RedisMutex(redis, { ttlMs: 60 });
    const k = key();
    const old = String(await mutex.tryAcquire(k));
    // wait (bounded) until the old lock expired, then another holder takes it
    let taken: string | undefined;
    for (let i = 0; i < 200 && !taken; i++) {
      taken = await new RedisMutex(redis, { ttlMs: 10_000 }).tryAcquire(k);
      if (!taken) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(taken).to.be.a('string').and.not.equal(old);
    expect(await mutex.release(k, old)).to.equal(false);
    expect(await mutex.extend(k, old)).to.equal(false);
    expect(await redis.get(k)).to.equal(taken);
    expect(await redis.pttl(k)).to.be.greaterThan(1_000); // still the new holder's TTL, not the old owner's 60 ms
  });

  it('extend gives the owner a fresh TTL', async () => {
    const mutex = new RedisMutex(redis, { ttlMs: 30_000 });
    const k = key();
    const owner = String(await mutex.tryAcquire(k));
    await redis.pexpire(k, 100);
    expect(await mutex.extend(k, owner)).to.equal(true);
    expect(await redis.pttl(k)).to.be.greaterThan(10_000);
  });

  it('withLock serialises concurrent read-modify-writes and releases after each', async () => {
    const k = key();
    const counter = `${k}:n`;
    const bump = () =>
      withLock(redis, k, async () => {
        const n = Number(await redis.get(counter));
        await new Promise((resolve) => setImmediate(resolve));
        await redis.set(counter, String(n + 1));
      });
    await Promise.all(Array.from({ length: 20 }, bump));
    expect(await redis.get(counter)).to.equal('20');
    expect(await redis.exists(k)).to.equal(0);
    await redis.del(counter);
  });

  it('withLock gives up after waitMs with the caller error, and releases when the task throws', async () => {
    const mutex = new RedisMutex(redis, { ttlMs: 10_000 });
    const k = key();
    const holder = String(await mutex.tryAcquire(k));
    const busy = await mutex.withLock(k, async () => 'ran', { waitMs: 50, busyError: () => new Error('busy!') }).catch((error: Error) => error);
    expect(busy).to.be.instanceOf(Error).with.property('message', 'busy!');
    await mutex.release(k, holder);
    const failed = await mutex
      .withLock(k, async () => {
        throw new Error('task failed');
      })
      .catch((error: Error) => error);
    expect(failed).to.have.property('message', 'task failed');
    expect(await mutex.isHeld(k)).to.equal(false);
  });
});
