import { createLogger, loadConfig } from '@platform/shared-types';
import { onShutdown, startService } from '@platform/shared-types/express';
import { opsAddress } from '@platform/shared-types/ops';
import { buildApp } from './app.ts';
import { type Config, configSchema } from './config.ts';
import { startUserEvents } from './features/accounts/user-events.ts';
import { connectStores } from './stores.ts';
import { startSweeper } from './sweeper.ts';

export async function start(config: Config) {
  const logger = createLogger('accounting', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV });
  return startService({
    logger,
    port: config.PORT,
    host: config.HOST,
    ops: opsAddress(config, 'accounting'),
    connect: () => connectStores(config),
    build: (stores) => buildApp({ config, logger, stores }),
    background: (stores) => {
      const stopEvents = startUserEvents({
        db: stores.db,
        redis: stores.redis,
        logger,
        stream: config.USER_EVENTS_STREAM,
        group: config.USER_EVENTS_GROUP,
        consumer: config.USER_EVENTS_CONSUMER,
        blockMs: config.USER_EVENTS_BLOCK_MS,
        claimIdleMs: config.USER_EVENTS_CLAIM_IDLE_MS,
      });
      const stopSweeper = startSweeper(stores.db, logger, { intervalMs: config.SWEEP_INTERVAL_MS, idempotencyTtlHours: config.IDEMPOTENCY_TTL_HOURS });
      return async () => {
        await Promise.all([stopSweeper(), stopEvents()]);
      };
    },
  });
}

if (import.meta.main) {
  const config = loadConfig(configSchema);
  const service = await start(config);
  onShutdown(createLogger('accounting'), service.stop);
}
