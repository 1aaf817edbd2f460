import { createLogger, loadConfig } from '@platform/shared-types';
import { onShutdown, startService } from '@platform/shared-types/express';
import { opsAddress } from '@platform/shared-types/ops';
import { buildApp } from './app.ts';
import { type Config, configSchema } from './config.ts';
import type { ProviderOverrides } from './providers/providers.ts';
import { type ChatRuntime, createRuntime } from './runtime.ts';
import { connectStores, type Stores } from './stores.ts';

export async function start(config: Config, options: { providers?: ProviderOverrides } = {}) {
  const logger = createLogger('chat', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV });
  return startService<Stores & { runtime: ChatRuntime }>({
    logger,
    port: config.PORT,
    host: config.HOST,
    ops: opsAddress(config, 'chat'),
    connect: async () => {
      const stores = await connectStores(config, logger);
      try {
        const runtime = await createRuntime(config, logger, stores, options.providers);
        return { ...stores, runtime };
      } catch (error) {
        await stores.close();
        throw error;
      }
    },
    build: (stores) => buildApp({ config, logger, stores, runtime: stores.runtime }),
    background: (stores) => {
      stores.runtime.startBackground();
      return () => stores.runtime.stop();
    },
  });
}

if (import.meta.main) {
  const config = loadConfig(configSchema);
  const service = await start(config);
  onShutdown(createLogger('chat'), service.stop);
}
