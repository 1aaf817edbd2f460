import { randomUUID } from 'node:crypto';
import { ApiError } from '@platform/shared-types';
import { RedisMutex } from '@platform/shared-types/redis';
import type { Redis } from 'ioredis';

// Drops holders that outlived the upload deadline (a crashed instance), then takes a slot if one is free.
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

/** how long one quota decision may hold the user's lock (a count and an insert), and how long to wait for it */
const QUOTA_LOCK_MS = 5_000;

export interface UploadGuardOptions {
  prefix: string;
  /** uploads one user may have in flight at once, across every chat instance */
  maxConcurrent: number;
  /** an upload is cut after this long, so a slot older than that (plus a margin) belongs to nobody */
  uploadTimeoutMs: number;
  /** refused uploads per user and window before every upload is refused until the window ends */
  maxRefused: number;
  refusedWindowSeconds: number;
}

/**
 * Per-user upload admission in Redis, shared by every chat instance: a concurrency cap (slots in a sorted set,
 * so a slot of a crashed holder expires) and a count of refused attempts, both checked before a body is read.
 */
export class UploadGuard {
  readonly #redis: Redis;
  readonly #options: UploadGuardOptions;
  readonly #quotaLock: RedisMutex;

  constructor(redis: Redis, options: UploadGuardOptions) {
    this.#redis = redis;
    this.#options = options;
    this.#quotaLock = new RedisMutex(redis, { ttlMs: QUOTA_LOCK_MS });
  }

  #slotsKey(userId: string): string {
    return `${this.#options.prefix}files:uploading:${userId}`;
  }

  #refusedKey(userId: string): string {
    return `${this.#options.prefix}files:refused:${userId}`;
  }

  /** A slot id to release later, or undefined when the user already has the maximum in flight. */
  async acquire(userId: string): Promise<string | undefined> {
    const id = randomUUID();
    const now = Date.now();
    const lifetime = this.#options.uploadTimeoutMs + 10_000;
    const won = await this.#redis.eval(ACQUIRE, 1, this.#slotsKey(userId), now, now - lifetime, this.#options.maxConcurrent, id, lifetime);
    return won === 1 ? id : undefined;
  }

  /**
   * Runs `decide` (count today's uploads, then make the new file visible or refuse it) while holding the user's
   * quota lock in Redis, shared by every chat instance: concurrent uploads decide one at a time, so exactly the
   * quota's number succeed (a count-then-insert in the MongoDB-compatible store is not atomic).
   */
  async underQuotaLock<T>(userId: string, decide: () => Promise<T>): Promise<T> {
    return this.#quotaLock.withLock(`${this.#options.prefix}files:quota-lock:${userId}`, decide, {
      waitMs: QUOTA_LOCK_MS,
      busyError: () => new ApiError('UPSTREAM_UNAVAILABLE', 'Uploads of this user are busy; try again'),
    });
  }

  async release(userId: string, slot: string): Promise<void> {
    await this.#redis.zrem(this.#slotsKey(userId), slot);
  }

  /** Seconds until refused uploads are accepted again, or 0 when the user is under the limit. */
  async refusedBlockSeconds(userId: string): Promise<number> {
    const [count, ttl] = await this.#redis
      .multi()
      .get(this.#refusedKey(userId))
      .ttl(this.#refusedKey(userId))
      .exec()
      .then((replies) => replies?.map(([, value]) => value) ?? []);
    return Number(count ?? 0) >= this.#options.maxRefused ? Math.max(1, Number(ttl)) : 0;
  }

  async countRefused(userId: string): Promise<void> {
    const key = this.#refusedKey(userId);
    const count = await this.#redis.incr(key);
    if (count === 1) await this.#redis.expire(key, this.#options.refusedWindowSeconds);
  }
}
