// A consumer process that reads entries and never finishes applying them: the test kills it (a crash before the ack).
import { createLogger } from '../../src/logger.ts';
import { StreamConsumer } from '../../src/redis/stream-consumer.ts';
import { connectRedis } from '../../src/stores/index.ts';

const [stream, group] = process.argv.slice(2);
const redis = await connectRedis(String(process.env.REDIS_URL));
new StreamConsumer<string>({
  redis,
  stream: String(stream),
  group: String(group),
  consumer: 'doomed',
  parse: (fields) => fields[1],
  apply: (value) => {
    process.stdout.write(`applying ${value}\n`);
    return new Promise(() => undefined);
  },
  logger: createLogger('doomed', { level: 'silent' }),
  blockMs: 100,
}).start();
