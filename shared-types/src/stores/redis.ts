import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

/**
 * Logs a connection's failures as one warning per outage (ioredis retries every few hundred ms) and its
 * recovery. Without an `error` listener ioredis prints each failure to stderr as plain text, outside the
 * JSON log. `duplicate()` copies options, not listeners: call this for every duplicate too.
 */
export function reportRedisErrors<T extends Redis>(redis: T, logger: Logger, connection: string): T {
  let failing = false;
  redis.on('error', (error: Error) => {
    if (failing) return;
    failing = true;
    logger.warn({ err: { message: error.message, code: (error as NodeJS.ErrnoException).code }, connection }, 'redis connection failing');
  });
  redis.on('ready', () => {
    if (!failing) return;
    failing = false;
    logger.info({ connection }, 'redis connection restored');
  });
  return redis;
}

export async function connectRedis(url: string, logger?: Logger): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true });
  if (logger) reportRedisErrors(redis, logger, 'main');
  await redis.connect();
  return redis;
}

/** true when Redis answers a PING */
export const pingRedis = (redis: Redis): Promise<boolean> =>
  redis.ping().then(
    () => true,
    () => false,
  );
