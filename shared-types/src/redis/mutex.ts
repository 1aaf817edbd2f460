import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';

// Only the owner (the token it set) may delete or extend the key: an expired lock taken by another holder is theirs.
const RELEASE_IF_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const EXTEND_IF_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

export interface WithLockOptions {
  /** how long to keep trying before giving up (default 5 s) */
  waitMs?: number;
  /** the error thrown when the lock was not acquired in time (default: an Error naming the key) */
  busyError?: () => Error;
}

/**
 * A mutex per key in Redis, shared by every instance: SET NX PX with a random owner token; release and extend
 * are Lua scripts that act only while the key still holds that token. The TTL bounds how long a holder that
 * died keeps others out.
 */
export class RedisMutex {
  readonly #redis: Redis;
  readonly #ttlMs: number;
  readonly #logger: Logger | undefined;

  constructor(redis: Redis, options: { ttlMs: number; logger?: Logger }) {
    this.#redis = redis;
    this.#ttlMs = options.ttlMs;
    this.#logger = options.logger;
  }

  /** Takes the lock once: the owner token on success, undefined when someone else holds it. */
  async tryAcquire(key: string, owner: string = randomUUID()): Promise<string | undefined> {
    return (await this.#redis.set(key, owner, 'PX', this.#ttlMs, 'NX')) === 'OK' ? owner : undefined;
  }

  /** Retries tryAcquire (5-25 ms apart) until `waitMs` has passed: the owner token, or undefined. */
  async acquire(key: string, waitMs: number): Promise<string | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const owner = await this.tryAcquire(key);
      if (owner || Date.now() > deadline) return owner;
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
  }

  /** Gives the lock a fresh TTL if `owner` still holds it; false when it expired (and may be someone else's). */
  async extend(key: string, owner: string): Promise<boolean> {
    return (await this.#redis.eval(EXTEND_IF_OWNER, 1, key, owner, String(this.#ttlMs))) === 1;
  }

  /** Deletes the lock if `owner` still holds it; false when it had expired (another holder's lock stays). */
  async release(key: string, owner: string): Promise<boolean> {
    return (await this.#redis.eval(RELEASE_IF_OWNER, 1, key, owner)) === 1;
  }

  async isHeld(key: string): Promise<boolean> {
    return (await this.#redis.exists(key)) === 1;
  }

  /**
   * Runs `task` holding the lock. A failed release is logged, not thrown: the task's outcome stands and the
   * lock ends with its TTL.
   */
  async withLock<T>(key: string, task: () => Promise<T>, options: WithLockOptions = {}): Promise<T> {
    const owner = await this.acquire(key, options.waitMs ?? 5_000);
    if (!owner) throw options.busyError?.() ?? new Error(`lock ${key} not acquired`);
    try {
      return await task();
    } finally {
      await this.release(key, owner).catch((error: unknown) => {
        this.#logger?.warn({ err: error, key }, 'could not release a lock; it ends with its TTL');
      });
    }
  }
}

/** One-off `RedisMutex.withLock` (default TTL 5 s): for a short read-modify-write under a per-key lock. */
export function withLock<T>(redis: Redis, key: string, task: () => Promise<T>, options: WithLockOptions & { ttlMs?: number } = {}): Promise<T> {
  return new RedisMutex(redis, { ttlMs: options.ttlMs ?? 5_000 }).withLock(key, task, options);
}
