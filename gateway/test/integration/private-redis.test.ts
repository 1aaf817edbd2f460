import { connect } from 'node:net';
import { expect } from 'chai';
import { PrivateRedis } from '../support/harness.ts';

/** whether something accepts connections on the port */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('test harness: PrivateRedis', () => {
  it('leaves no redis-server behind when started twice (as a restart in a finally block does) and then destroyed', async function () {
    this.timeout(20_000);
    const redis = new PrivateRedis({ persist: true });
    await redis.start();
    await redis.start().catch(() => undefined);
    expect(await listening(redis.port)).to.equal(true);
    await redis.destroy();
    expect(await listening(redis.port), 'a redis-server still listens after destroy()').to.equal(false);
  });
});
