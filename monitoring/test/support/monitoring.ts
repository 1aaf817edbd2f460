import { randomBytes } from 'node:crypto';
import { dropPostgresDatabase } from '@platform/shared-types/stores/postgres';
import { connectRedis } from '@platform/shared-types/stores/redis';
import { createTestAuth, storeUrls, type TestAuth, uniqueDbName } from '@platform/shared-types/testing';
import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';
import { startFakeAccounting, startFakeAuth, startFakeChat } from './fake-services.ts';

/**
 * One monitoring instance on real PostgreSQL (fresh database) and Redis (own stream and channel names),
 * wired to fake auth, accounting and chat servers. `stop()` tears everything down.
 */
export async function startTestMonitoring(options: { auth?: TestAuth; env?: Record<string, string> } = {}) {
  const auth = options.auth ?? createTestAuth();
  const urls = storeUrls();
  const dbName = uniqueDbName('monitoring');
  const suffix = randomBytes(4).toString('hex');
  const stream = `test:events:users:${suffix}`;
  const [fakeAuth, accounting, chat] = await Promise.all([startFakeAuth(auth), startFakeAccounting(auth), startFakeChat(auth)]);
  const config = configSchema.parse({
    ...auth.secrets,
    NODE_ENV: 'test',
    PORT: '0',
    PG_URL: urls.PG_URL,
    PG_DB: dbName,
    REDIS_URL: urls.REDIS_URL,
    AUTH_URL: fakeAuth.url,
    ACCOUNTING_URL: accounting.url,
    CHAT_URL: chat.url,
    USER_EVENTS_STREAM: stream,
    USER_EVENTS_BLOCK_MS: '200',
    RELATIONSHIP_CHANGES_CHANNEL: `test:monitoring:changes:${suffix}`,
    OBSERVE_HEARTBEAT_MS: '200',
    UPSTREAM_TIMEOUT_MS: '1000',
    ...options.env,
  });
  const service = await start(config);
  return {
    auth,
    config,
    service,
    url: service.url,
    fakeAuth,
    accounting,
    chat,
    stream,
    dbName,
    async stop() {
      await service.stop();
      await Promise.all([fakeAuth.close(), accounting.close(), chat.close()]);
      const redis = await connectRedis(urls.REDIS_URL);
      await redis.del(stream);
      await redis.quit();
      await dropPostgresDatabase(urls.PG_URL, dbName);
    },
  };
}

export type TestMonitoring = Awaited<ReturnType<typeof startTestMonitoring>>;
