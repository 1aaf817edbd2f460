import { ACCESS_TOKEN_TTL_SECONDS, CLOCK_TOLERANCE_SECONDS, createKeyring, createLogger, followRevocations, loadConfig } from '@platform/shared-types';
// the server helpers without the express kit: the gateway has no express routes
import { listen, onShutdown } from '@platform/shared-types/server';
import { Redis } from 'ioredis';
import { createGatewayHandler } from './app.ts';
import { type Config, configSchema, substitutionEnv } from './config.ts';
import { compile, type Runtime } from './engine/compile.ts';
import { ConfigLoader } from './engine/config-loader.ts';
import { applyTimeouts, guardServer, serverOptions } from './engine/edge.ts';
import { createMetrics } from './engine/metrics.ts';
import { ServicePools } from './engine/services.ts';
import { createOpsHandler } from './ops.ts';
import { createGate, defineGateCommands } from './policies/redis-gate.ts';
import { TokenCache } from './policies/verify-token.ts';

/**
 * Starts the gateway: Redis (commands fail fast when it is down, so limits fall back instead of queueing),
 * the routing file (validated; watched; SIGHUP reloads), and the HTTP server.
 */
export async function start(config: Config) {
  const logger = createLogger('gateway', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV });
  const metrics = createMetrics();
  const redis = defineGateCommands(
    new Redis(config.REDIS_URL, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // no auto-pipelining: the gate already sends one command per event-loop turn
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
    }),
  );
  redis.on('error', () => undefined); // state changes are logged by the gate; ioredis keeps reconnecting
  let runtime: Runtime | undefined;
  let onHttpChange: ((next: Runtime['config']['http']) => void) | undefined;
  const current = (): Runtime => runtime as Runtime;
  // DESIGN section 5: this instance's copy of the revocations of the last access-token lifetime, for Redis outages
  const revocations = followRevocations({ redis, windowMs: (ACCESS_TOKEN_TTL_SECONDS + 2 * CLOCK_TOLERANCE_SECONDS) * 1000, logger });
  const gate = createGate({
    redis,
    revocations: revocations.mirror,
    logger,
    failMode: () => current().config.redis.failMode,
    onFallback: () => metrics.redisFallbacks.inc(),
  });
  const pools = new ServicePools();
  const compileDeps = {
    logger,
    keyring: createKeyring(config.JWT_ACCESS_SECRET, config.JWT_ACCESS_SECRET_PREVIOUS),
    internalSecret: config.INTERNAL_SECRET,
    gate,
    redis,
    metrics,
    tokenCache: new TokenCache(),
    pools,
  };
  const loader = new ConfigLoader<Runtime>({
    file: config.GATEWAY_CONFIG,
    env: substitutionEnv(config),
    logger,
    build: (gatewayConfig) => compile(gatewayConfig, compileDeps),
    apply: (next) => {
      if (runtime && (next.config.http.port !== runtime.config.http.port || next.config.http.host !== runtime.config.http.host)) {
        logger.warn('http.port and http.host take effect on restart only');
      }
      runtime = next;
      onHttpChange?.(next.config.http);
      pools.retain(next.services.values());
      redis.options.commandTimeout = next.config.redis.commandTimeoutMs;
    },
    onResult: (result) => metrics.configReloads.inc({ result }),
  });
  try {
    await loader.start();
    await redis.connect().catch((error: Error) => {
      if (current().config.redis.failMode === 'closed') throw error;
      logger.warn({ err: { message: error.message } }, 'redis unavailable at start: limits in memory until it answers');
    });
  } catch (error) {
    revocations.close();
    await loader.close();
    redis.disconnect();
    await pools.close();
    throw error;
  }
  const handler = createGatewayHandler({ logger, metrics, gate, runtime: current });
  const { http } = current().config;
  const server = await listen(handler, http.port, http.host, { serverOptions: serverOptions(http) });
  const connections = guardServer(server.server, () => current().config.http, logger);
  onHttpChange = (next) => applyTimeouts(server.server, next);
  // metrics only on the private ops port (DESIGN 7); the public port answers 404 for /metrics
  let draining = false;
  const ops = await listen(createOpsHandler(metrics, { ready: () => !draining }), config.OPS_PORT, config.OPS_HOST).catch(async (error: unknown) => {
    await server.close(0);
    await loader.close();
    await pools.close();
    redis.disconnect();
    throw error;
  });
  const onHangup = () => {
    logger.info('SIGHUP: reloading gateway config');
    loader.schedule();
  };
  process.on('SIGHUP', onHangup);
  logger.info({ url: server.url, opsUrl: ops.url, config: config.GATEWAY_CONFIG }, 'listening');
  return {
    url: server.url,
    port: server.port,
    /** the private ops listener: GET /metrics, /livez, /readyz */
    opsUrl: ops.url,
    stores: {
      redis,
      ready: async () => ({ redis: redis.status === 'ready' }),
      close: async () => {
        redis.disconnect();
      },
    },
    /** config version, hash and last refusal (tests and ops) */
    configStatus: () => loader.status,
    reload: () => loader.reload(),
    metrics,
    /** client connections open now (tests and ops) */
    openConnections: connections.open,
    /** this instance's revocation copy (tests: wait until it has loaded) */
    revocations,
    /**
     * Before a shutdown: readiness fails (the orchestrator stops sending new connections) for
     * `SHUTDOWN_DRAIN_MS` while every request is still served; `stop()` closes afterwards.
     */
    async drain(ms = config.SHUTDOWN_DRAIN_MS) {
      draining = true;
      if (ms > 0) {
        logger.info({ drainMs: ms }, 'draining: readiness fails, requests still served');
        // unref: the listeners keep the process up meanwhile, and a stop() during the drain is not held back
        await new Promise((resolve) => setTimeout(resolve, ms).unref());
      }
    },
    async stop() {
      process.off('SIGHUP', onHangup);
      await loader.close();
      await server.close(2_000);
      await ops.close(0);
      await pools.close();
      revocations.close();
      redis.disconnect();
    },
  };
}

export type RunningGateway = Awaited<ReturnType<typeof start>>;

if (import.meta.main) {
  const config = loadConfig(configSchema);
  const gateway = await start(config);
  onShutdown(createLogger('gateway', { level: config.LOG_LEVEL, nodeEnv: config.NODE_ENV }), async () => {
    await gateway.drain();
    await gateway.stop();
  });
}
