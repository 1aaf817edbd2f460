import { createLogger, loadConfig } from '@platform/shared-types';
import { onShutdown, startService } from '@platform/shared-types/express';
import { connectRedis, ping } from '@platform/shared-types/stores';
import { buildGateway } from './app.ts';
import { type Config, configSchema } from './config.ts';

export async function start(config: Config) {
  const logger = createLogger('gateway', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV });
  let gateway: ReturnType<typeof buildGateway> | undefined;
  return startService({
    logger,
    port: config.PORT,
    host: config.HOST,
    connect: async () => {
      const redis = await connectRedis(config.REDIS_URL);
      return {
        redis,
        ready: async () => ({ redis: await ping.redis(redis) }),
        close: async () => {
          await gateway?.close();
          await redis.quit();
        },
      };
    },
    build: () => {
      gateway = buildGateway({ config, logger });
      return (req, res) => void gateway?.handler(req, res);
    },
  });
}

if (import.meta.main) {
  const config = loadConfig(configSchema);
  const service = await start(config);
  onShutdown(createLogger('gateway'), service.stop);
}
