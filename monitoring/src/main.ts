import { createLogger, loadConfig } from '@platform/shared-types';
import { onShutdown, startService } from '@platform/shared-types/express';
import { opsAddress } from '@platform/shared-types/ops';
import { createMonitoring, type Monitoring } from './app.ts';
import { type Config, configSchema } from './config.ts';
import { connectStores } from './stores.ts';

export async function start(config: Config) {
  const logger = createLogger('monitoring', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV });
  let monitoring: Monitoring | undefined;
  const service = await startService({
    logger,
    port: config.PORT,
    host: config.HOST,
    ops: opsAddress(config, 'monitoring'),
    connect: () => connectStores(config, logger),
    build: (stores) => {
      monitoring = createMonitoring({ config, logger, stores });
      return monitoring.app;
    },
    background: () => monitoring?.startBackground(),
  });
  return { ...service, monitoring: monitoring as Monitoring };
}

if (import.meta.main) {
  const config = loadConfig(configSchema);
  const service = await start(config);
  onShutdown(createLogger('monitoring'), service.stop);
}
