import { portOpen } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { PrivateRedis } from '../support/harness.ts';

describe('test harness: PrivateRedis', () => {
  it('leaves no redis-server behind when started twice (as a restart in a finally block does) and then destroyed', async function () {
    this.timeout(20_000);
    const redis = new PrivateRedis({ persist: true });
    await redis.start();
    await redis.start().catch(() => undefined);
    expect(await portOpen(redis.port)).to.equal(true);
    await redis.destroy();
    expect(await portOpen(redis.port), 'a redis-server still listens after destroy()').to.equal(false);
  });
});
