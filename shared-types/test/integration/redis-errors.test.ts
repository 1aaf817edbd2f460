// A service's Redis connections while Redis is gone: ioredis retries every few hundred ms, and without an
// `error` listener it prints every failure to stderr as plain text ("[ioredis] Unhandled error event"),
// outside the JSON log. Each connection logs one warning per outage instead, and its recovery.
import { Writable } from 'node:stream';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { createLogger } from '../../src/logger.ts';
import { connectRedis, reportRedisErrors } from '../../src/stores/redis.ts';
import { PrivateRedis } from '../../src/testing/private-redis.ts';

describe('shared-types: Redis connection errors go to the JSON log, once per outage', () => {
  const server = new PrivateRedis();
  const lines: { msg: string; connection?: string; level: number }[] = [];
  const logger = createLogger('test', {
    level: 'info',
    destination: new Writable({
      write(chunk, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    }),
  });
  const printed: unknown[][] = [];
  const consoleError = console.error;
  let main: Redis;
  let duplicate: Redis;

  before(async () => {
    await server.start();
    console.error = (...args: unknown[]) => {
      printed.push(args);
    };
    main = await connectRedis(server.url, logger);
    duplicate = reportRedisErrors(main.duplicate(), logger, 'subscriber');
    await duplicate.ping();
  });
  after(async () => {
    console.error = consoleError;
    main?.disconnect();
    duplicate?.disconnect();
    await server.destroy();
  });

  const logged = (msg: string, connection: string) => lines.filter((l) => l.msg === msg && l.connection === connection);
  /** resolves after the connection has failed to reconnect `times` more times */
  const failedReconnects = async (redis: Redis, times: number) => {
    // not events.once: it rejects on the 'error' events this test is about
    for (let i = 0; i < times; i++) await new Promise((resolve) => redis.once('reconnecting', resolve));
  };

  it('logs one warning per connection while ioredis keeps retrying, and nothing on stderr', async () => {
    await server.stop();
    await Promise.all([failedReconnects(main, 3), failedReconnects(duplicate, 3)]);
    expect(logged('redis connection failing', 'main')).to.have.length(1);
    expect(logged('redis connection failing', 'subscriber')).to.have.length(1);
    expect(logged('redis connection failing', 'main')[0]?.level).to.equal(40);
    expect(printed.filter((args) => String(args[0]).includes('[ioredis]'))).to.deep.equal([]);
  });

  it('logs the recovery, and the next outage again', async () => {
    await server.start();
    const ready = (redis: Redis) => redis.status === 'ready' || new Promise((resolve) => redis.once('ready', resolve));
    await Promise.all([ready(main), ready(duplicate)]);
    expect(await main.ping()).to.equal('PONG');
    expect(logged('redis connection restored', 'main')).to.have.length(1);
    expect(logged('redis connection restored', 'subscriber')).to.have.length(1);
    await server.stop();
    await failedReconnects(main, 2);
    expect(logged('redis connection failing', 'main')).to.have.length(2);
    expect(printed.filter((args) => String(args[0]).includes('[ioredis]'))).to.deep.equal([]);
  });
});
