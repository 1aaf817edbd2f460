import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/**
 * A short per-key mutex in Redis (SET NX PX, released only by its owner). Used around read-modify-write
 * updates of one document: FerretDB rewrites whole documents on update, so two concurrent updates of
 * different fields could otherwise lose one of them (a profile edit undoing a role change).
 */
export async function withLock<T>(redis: Redis, key: string, task: () => Promise<T>, options: { ttlMs?: number; waitMs?: number } = {}): Promise<T> {
  const ttlMs = options.ttlMs ?? 5_000;
  const deadline = Date.now() + (options.waitMs ?? 5_000);
  const owner = randomUUID();
  while ((await redis.set(key, owner, 'PX', ttlMs, 'NX')) !== 'OK') {
    if (Date.now() > deadline) throw new Error(`lock ${key} not acquired`);
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
  }
  try {
    return await task();
  } finally {
    await redis.eval(RELEASE, 1, key, owner);
  }
}
