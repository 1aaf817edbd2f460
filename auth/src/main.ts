import { createLogger, loadConfig } from '@platform/shared-types';
import { onShutdown, startService } from '@platform/shared-types/express';
import { opsAddress } from '@platform/shared-types/ops';
import { buildApp, buildServices } from './app.ts';
import { type Config, configSchema } from './config.ts';
import { createContext } from './context.ts';
import { startUserEventsRelay } from './lib/user-events.ts';
import { connectStores } from './stores.ts';

export async function start(config: Config) {
  const logger = createLogger('auth', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV });
  return startService({
    logger,
    port: config.PORT,
    host: config.HOST,
    ops: opsAddress(config, 'auth'),
    connect: () => connectStores(config, logger),
    build: (stores) => buildApp({ config, logger, stores }),
    // Expired refresh and one-time tokens are deleted periodically: FerretDB has no TTL indexes.
    background: (stores) => {
      const { sessions } = buildServices(createContext(config, logger, stores));
      let running: Promise<unknown> | undefined;
      const timer = setInterval(() => {
        running ??= sessions
          .sweepExpired()
          .then((removed) => logger.debug(removed, 'swept expired tokens'))
          .catch((error: unknown) => logger.warn({ err: error }, 'token sweep failed'))
          .finally(() => {
            running = undefined;
          });
      }, config.SWEEP_INTERVAL_SECONDS * 1000);
      timer.unref();
      const stopRelay = startUserEventsRelay({
        redis: stores.redis,
        mongo: stores.mongo,
        stream: config.USER_EVENTS_STREAM,
        logger,
        pollMs: config.USER_EVENTS_RELAY_MS,
      });
      return async () => {
        clearInterval(timer);
        await Promise.all([running, stopRelay()]);
      };
    },
  });
}

if (import.meta.main) {
  const config = loadConfig(configSchema);
  const service = await start(config);
  onShutdown(createLogger('auth'), service.stop);
}
