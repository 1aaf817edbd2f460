import { isIPv6 } from 'node:net';
import { ApiError } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { Config } from '../../config.ts';

type LockoutConfig = Pick<
  Config,
  | 'REDIS_KEY_PREFIX'
  | 'LOGIN_MAX_FAILURES'
  | 'LOGIN_FAILURE_WINDOW_SECONDS'
  | 'LOGIN_LOCK_SECONDS'
  | 'LOGIN_ACCOUNT_MAX_FAILURES'
  | 'LOGIN_ACCOUNT_WINDOW_SECONDS'
>;

/** Expands an IPv6 address to its eight 16-bit groups. */
function ipv6Groups(address: string): string[] {
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const missing = 8 - left.length - right.length;
  return [...left, ...Array.from({ length: Math.max(0, missing) }, () => '0'), ...right].map((group) => group.padStart(4, '0'));
}

/**
 * The client address as a lockout key: IPv4-mapped IPv6 becomes IPv4, and IPv6 is taken per /64 (one
 * subscriber usually owns a whole /64, so rotating inside it must not give fresh attempts).
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (!isIPv6(plain)) return plain;
  return `${ipv6Groups(plain.toLowerCase()).slice(0, 4).join(':')}::/64`;
}

/**
 * Failed sign-ins counted twice (DESIGN section 6, 423 ACCOUNT_LOCKED): per account and client address, which
 * locks an attacker's address without locking the owner out from elsewhere, and per account across all addresses,
 * with a much higher threshold, which stops guessing spread over many addresses. A password reset clears both.
 */
export function loginLockout(redis: Redis, config: LockoutConfig) {
  const key = (name: string) => `${config.REDIS_KEY_PREFIX}${name}`;
  const keys = {
    addressFailures: (subject: string, address: string) => key(`login-failures:${subject}:addr:${address}`),
    addressLock: (subject: string, address: string) => key(`login-lock:${subject}:addr:${address}`),
    accountFailures: (subject: string) => key(`login-failures:${subject}:all`),
    accountLock: (subject: string) => key(`login-lock:${subject}:all`),
    /** the addresses that have counters for the subject, so a reset can clear all of them */
    addresses: (subject: string) => key(`login-addresses:${subject}`),
  };
  const addressesTtl = Math.max(config.LOGIN_FAILURE_WINDOW_SECONDS, config.LOGIN_ACCOUNT_WINDOW_SECONDS, config.LOGIN_LOCK_SECONDS);

  function lockedError(seconds: number): ApiError {
    return new ApiError('ACCOUNT_LOCKED', 'Too many failed sign-in attempts; try again later', { headers: { 'Retry-After': String(seconds) } });
  }

  async function count(counter: string, windowSeconds: number): Promise<number> {
    const value = await redis.incr(counter);
    if (value === 1) await redis.expire(counter, windowSeconds);
    return value;
  }

  async function lock(lockKey: string, counter: string): Promise<void> {
    await redis.multi().set(lockKey, '1', 'EX', config.LOGIN_LOCK_SECONDS).del(counter).exec();
  }

  return {
    /** 423 while the subject is locked for this address or for every address. */
    async assertNotLocked(subject: string, address: string | undefined): Promise<void> {
      const where = addressKey(address);
      const [byAddress, byAccount] = await Promise.all([redis.ttl(keys.addressLock(subject, where)), redis.ttl(keys.accountLock(subject))]);
      const seconds = Math.max(byAddress, byAccount, 0);
      if (seconds > 0) throw lockedError(seconds);
    },

    async recordFailure(subject: string, address: string | undefined): Promise<void> {
      const where = addressKey(address);
      await redis.multi().sadd(keys.addresses(subject), where).expire(keys.addresses(subject), addressesTtl).exec();
      const [byAddress, byAccount] = await Promise.all([
        count(keys.addressFailures(subject, where), config.LOGIN_FAILURE_WINDOW_SECONDS),
        count(keys.accountFailures(subject), config.LOGIN_ACCOUNT_WINDOW_SECONDS),
      ]);
      if (byAddress >= config.LOGIN_MAX_FAILURES) await lock(keys.addressLock(subject, where), keys.addressFailures(subject, where));
      if (byAccount >= config.LOGIN_ACCOUNT_MAX_FAILURES) await lock(keys.accountLock(subject), keys.accountFailures(subject));
    },

    /** A correct password from an address forgets that address's failures (the account-wide count stays). */
    async recordSuccess(subject: string, address: string | undefined): Promise<void> {
      await redis.del(keys.addressFailures(subject, addressKey(address)));
    },

    /** Every counter and lock of the subject, on every address (after a password reset or change). */
    async clear(subject: string): Promise<void> {
      const addresses = await redis.smembers(keys.addresses(subject));
      await redis.del(
        keys.accountFailures(subject),
        keys.accountLock(subject),
        keys.addresses(subject),
        ...addresses.flatMap((where) => [keys.addressFailures(subject, where), keys.addressLock(subject, where)]),
      );
    },
  };
}

export type LoginLockout = ReturnType<typeof loginLockout>;
