import { createLogger, loadConfig } from '@platform/shared-types';
import { onShutdown, startService } from '@platform/shared-types/express';
import { buildApp } from './app.ts';
import { type Config, configSchema } from './config.ts';
import { connectStores } from './stores.ts';

export async function start(config: Config) {
  const logger = createLogger('auth', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV });
  return startService({
    logger,
    port: config.PORT,
    host: config.HOST,
    connect: () => connectStores(config),
    build: (stores) => buildApp({ config, logger, stores }),
  });
}

if (import.meta.main) {
  const config = loadConfig(configSchema);
  const service = await start(config);
  onShutdown(createLogger('auth'), service.stop);
}
