import { createLogger, loadConfig, userEventFromEntry } from '@platform/shared-types';
import { onShutdown, startService } from '@platform/shared-types/express';
import { opsAddress } from '@platform/shared-types/ops';
import { StreamConsumer } from '@platform/shared-types/redis';
import { buildApp } from './app.ts';
import { type Config, configSchema } from './config.ts';
import { withRetry } from './db.ts';
import { accountsDal } from './features/accounts/accounts-dal.ts';
import { connectStores } from './stores.ts';
import { startSweeper } from './sweeper.ts';

export async function start(config: Config) {
  const logger = createLogger('accounting', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV });
  return startService({
    logger,
    port: config.PORT,
    host: config.HOST,
    ops: opsAddress(config, 'accounting'),
    connect: () => connectStores(config, logger),
    build: (stores) => buildApp({ config, logger, stores }),
    background: (stores) => {
      // keeps accounts current; idempotent: an event older than the identity already applied changes nothing
      const accounts = accountsDal(stores.db);
      const userEvents = new StreamConsumer({
        redis: stores.redis,
        stream: config.USER_EVENTS_STREAM,
        group: config.USER_EVENTS_GROUP,
        consumer: config.USER_EVENTS_CONSUMER,
        parse: userEventFromEntry,
        apply: (event) => withRetry(() => accounts.applyUserEvent(event)),
        logger,
        blockMs: config.USER_EVENTS_BLOCK_MS,
        claimIdleMs: config.USER_EVENTS_CLAIM_IDLE_MS,
      }).start();
      const stopSweeper = startSweeper(stores.db, logger, { intervalMs: config.SWEEP_INTERVAL_MS, idempotencyTtlHours: config.IDEMPOTENCY_TTL_HOURS });
      return async () => {
        await Promise.all([stopSweeper(), userEvents.stop()]);
      };
    },
  });
}

if (import.meta.main) {
  const config = loadConfig(configSchema);
  const service = await start(config);
  onShutdown(createLogger('accounting'), service.stop);
}
