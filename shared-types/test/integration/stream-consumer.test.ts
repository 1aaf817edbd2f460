import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { USER_EVENT_FIELD, userEventFromEntry } from '../../src/events.ts';
import { createLogger } from '../../src/logger.ts';
import { StreamConsumer, type StreamConsumerOptions } from '../../src/redis/stream-consumer.ts';
import { connectRedis } from '../../src/stores/index.ts';

const HANGING_CONSUMER = fileURLToPath(new URL('../support/hanging-consumer.ts', import.meta.url));

async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('StreamConsumer against real Redis', () => {
  let redis: Redis;
  let stream: string;
  const group = 'test-group';
  const consumers: Array<StreamConsumer<unknown>> = [];
  const logLines: string[] = [];
  const logger = createLogger('test', {
    level: 'warn',
    destination: new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  });

  const consume = <T>(options: Omit<StreamConsumerOptions<T>, 'redis' | 'stream' | 'group' | 'logger'>): StreamConsumer<T> => {
    const consumer = new StreamConsumer<T>({ redis, stream, group, logger, blockMs: 100, retryMs: 50, ...options }).start();
    consumers.push(consumer as StreamConsumer<unknown>);
    return consumer;
  };
  const add = (value: string) => redis.xadd(stream, '*', 'v', value);
  const pending = async () => Number(((await redis.xpending(stream, group)) as [number])[0]);
  const plain = (fields: string[]) => fields[1];

  before(async () => {
    redis = await connectRedis(String(process.env.REDIS_URL));
  });
  beforeEach(() => {
    stream = `test:stream:${randomUUID()}`;
    logLines.length = 0;
  });
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((consumer) => consumer.stop()));
    await redis.del(stream);
  });
  after(() => redis.disconnect());

  it('creates the group, reads entries older than itself and new ones, in order, in batches, and acks each', async () => {
    for (let i = 0; i < 120; i++) await add(`old-${i}`);
    const seen: string[] = [];
    consume<string>({ parse: plain, apply: async (value) => seen.push(value), batch: 25 });
    await eventually(() => seen.length === 120, 'the old entries');
    for (let i = 0; i < 30; i++) await add(`new-${i}`);
    await eventually(() => seen.length === 150, 'the new entries');
    expect(seen).to.deep.equal([...Array.from({ length: 120 }, (_, i) => `old-${i}`), ...Array.from({ length: 30 }, (_, i) => `new-${i}`)]);
    await eventually(async () => (await pending()) === 0, 'every entry acknowledged');
  });

  it('does not ack an entry whose apply failed, and applies it again', async () => {
    await add('flaky');
    await add('after');
    const attempts: string[] = [];
    let failures = 2;
    const pendingWhileFailing: number[] = [];
    consume<string>({
      parse: plain,
      apply: async (value) => {
        attempts.push(value);
        if (value === 'flaky' && failures-- > 0) {
          pendingWhileFailing.push(await pending());
          throw new Error('store down');
        }
      },
    });
    await eventually(() => attempts.includes('after'), 'the entry after the flaky one');
    expect(attempts).to.deep.equal(['flaky', 'flaky', 'flaky', 'after']); // in order: nothing skipped past the failure
    expect(pendingWhileFailing).to.deep.equal([2, 2]); // while its apply fails, the entry (and the next) stay unacknowledged
    await eventually(async () => (await pending()) === 0, 'both acknowledged');
    expect(logLines.join('')).to.include('read or apply failed');
  });

  it('at least once across a crash before the ack: another consumer claims the dead one’s entry', async () => {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    await add('survives');
    const child = spawn(process.execPath, [HANGING_CONSUMER, stream, group], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += String(chunk);
    });
    try {
      await eventually(() => out.includes('applying survives'), 'the doomed consumer to read the entry', 20_000);
    } finally {
      child.kill('SIGKILL');
    }
    await once(child, 'exit');
    const [[owner, count]] = (await redis.xpending(stream, group))[3] as [[string, string]];
    expect([owner, count]).to.deep.equal(['doomed', '1']); // read, never acknowledged
    const seen: string[] = [];
    consume<string>({ parse: plain, apply: async (value) => seen.push(value), claimIdleMs: 300 });
    await eventually(() => seen.length > 0, 'the entry to be claimed and applied');
    expect(seen).to.deep.equal(['survives']);
    await eventually(async () => (await pending()) === 0, 'the claimed entry acknowledged');
  });

  it('logs, acks and skips malformed user events; applies well-formed ones', async () => {
    const good = {
      eventId: randomUUID(),
      type: 'user.updated',
      occurredAt: new Date().toISOString(),
      user: { id: 'u1', username: 'u', email: 'u@example.test', role: 'enduser', status: 'active' },
    };
    await redis.xadd(stream, '*', USER_EVENT_FIELD, '{not json');
    await redis.xadd(stream, '*', USER_EVENT_FIELD, JSON.stringify({ ...good, type: 'user.exploded' }));
    await redis.xadd(stream, '*', 'other', JSON.stringify(good));
    await redis.xadd(stream, '*', USER_EVENT_FIELD, JSON.stringify(good));
    const applied: string[] = [];
    consume({ parse: userEventFromEntry, apply: async (event) => applied.push(event.eventId) });
    await eventually(() => applied.length === 1, 'the good event');
    expect(applied).to.deep.equal([good.eventId]);
    await eventually(async () => (await pending()) === 0, 'all four acknowledged');
    expect(logLines.join('').match(/malformed entry skipped/g)).to.have.length(3);
  });

  it('recreates the group when the stream is deleted under it', async () => {
    const seen: string[] = [];
    consume<string>({ parse: plain, apply: async (value) => seen.push(value) });
    await add('before');
    await eventually(() => seen.length === 1, 'the first entry');
    await redis.del(stream);
    await eventually(async () => {
      await add('after');
      return seen.includes('after');
    }, 'an entry on the recreated stream');
  });

  it('stop() ends a blocked read well within the block time', async () => {
    const consumer = new StreamConsumer<string>({ redis, stream, group, logger, parse: plain, apply: async () => undefined, blockMs: 30_000 }).start();
    await eventually(async () => (await redis.exists(stream)) === 1, 'the group to exist');
    const started = Date.now();
    await consumer.stop();
    expect(Date.now() - started).to.be.lessThan(15_000);
  });
});
