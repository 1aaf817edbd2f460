import type { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

/** DESIGN section 5: auth writes these keys, the gateway reads them in the same round trip as the rate limit. */
export const revocationKeys = {
  /** = 1, TTL until the token's exp: one session logged out */
  jti: (jti: string) => `revoked:jti:${jti}`,
  /** = unix milliseconds (older values: seconds): every token of the user issued at or before it is dead */
  before: (userId: string) => `revoked:before:${userId}`,
};

/**
 * Every revocation auth writes is also appended here (same MULTI as the key), so each gateway and each
 * long-lived stream can keep its own copy: replayed on (re)connect, followed with XREAD, trimmed to the
 * last access-token lifetime.
 */
export const REVOCATION_STREAM = 'revocations:log';

/** One revocation as it travels on the stream. `untilMs`: when no token it can kill is alive any more. */
export type Revocation = { kind: 'jti'; jti: string; untilMs: number } | { kind: 'before'; userId: string; atMs: number; untilMs: number };

/** Values below this are whole seconds (written before millisecond precision). */
const SECONDS_LIMIT = 100_000_000_000;

/**
 * A `revoked:before` value in milliseconds. An old whole-second value covers its whole second: a token
 * issued in that second cannot be shown to be issued after it, so it is dead.
 */
export function revokedBeforeMs(value: string | number | null | undefined): number | undefined {
  const n = typeof value === 'number' ? value : value ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) return undefined;
  return n < SECONDS_LIMIT ? n * 1000 + 999 : n;
}

/** When the token was issued, in ms: `iatMs` when present, else the start of its `iat` second (the earliest it can be). */
export function issuedAtMs(claims: { iat: number; iatMs?: number }): number {
  return claims.iatMs ?? claims.iat * 1000;
}

/** DESIGN section 5: dead unless issued strictly after the revocation (the same millisecond counts as before). */
export function isRevokedBefore(claims: { iat: number; iatMs?: number }, beforeMs: number | undefined): boolean {
  return beforeMs !== undefined && issuedAtMs(claims) <= beforeMs;
}

export function encodeRevocation(revocation: Revocation): string[] {
  return revocation.kind === 'jti'
    ? ['kind', 'jti', 'jti', revocation.jti, 'until', String(revocation.untilMs)]
    : ['kind', 'before', 'user', revocation.userId, 'at', String(revocation.atMs), 'until', String(revocation.untilMs)];
}

export function decodeRevocation(fields: string[]): Revocation | undefined {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] as string, fields[i + 1] as string);
  const untilMs = Number(map.get('until'));
  if (!Number.isFinite(untilMs)) return undefined;
  if (map.get('kind') === 'jti' && map.get('jti')) return { kind: 'jti', jti: map.get('jti') as string, untilMs };
  const atMs = revokedBeforeMs(map.get('at'));
  if (map.get('kind') === 'before' && map.get('user') && atMs !== undefined) return { kind: 'before', userId: map.get('user') as string, atMs, untilMs };
  return undefined;
}

export interface RevocableToken {
  jti: string;
  sub: string;
  iat: number;
  iatMs?: number;
}

/**
 * This process' copy of the recent revocations. Answers for the gateway while Redis is unreachable, and tells
 * long-lived streams when their token dies.
 */
export class RevocationMirror {
  readonly #jtis = new Map<string, number>();
  readonly #before = new Map<string, { atMs: number; untilMs: number }>();
  readonly #listeners = new Set<(revocation: Revocation) => void>();
  #synced = false;

  /** true once a full replay has loaded: before that, the copy cannot vouch for any token */
  get synced(): boolean {
    return this.#synced;
  }

  get size(): number {
    return this.#jtis.size + this.#before.size;
  }

  /** Replaces the whole copy with a replay (on connect and reconnect). */
  reset(revocations: Revocation[], now = Date.now()): void {
    this.#jtis.clear();
    this.#before.clear();
    for (const revocation of revocations) this.#store(revocation, now);
    this.#synced = true;
    // a replay may hold revocations this process missed while disconnected: streams learn them now
    for (const revocation of revocations) this.#notify(revocation);
  }

  apply(revocation: Revocation, now = Date.now()): void {
    this.#store(revocation, now);
    this.#notify(revocation);
  }

  isRevoked(token: RevocableToken, now = Date.now()): boolean {
    const until = this.#jtis.get(token.jti);
    if (until !== undefined && until > now) return true;
    const before = this.#before.get(token.sub);
    return before !== undefined && before.untilMs > now && isRevokedBefore(token, before.atMs);
  }

  /** Runs `listener` for every revocation applied from now on; returns the unsubscribe. */
  onRevocation(listener: (revocation: Revocation) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** drops what can no longer kill a live token */
  prune(now = Date.now()): void {
    for (const [jti, until] of this.#jtis) if (until <= now) this.#jtis.delete(jti);
    for (const [userId, entry] of this.#before) if (entry.untilMs <= now) this.#before.delete(userId);
  }

  #store(revocation: Revocation, now: number): void {
    if (revocation.untilMs <= now) return;
    if (revocation.kind === 'jti') this.#jtis.set(revocation.jti, Math.max(revocation.untilMs, this.#jtis.get(revocation.jti) ?? 0));
    else {
      const known = this.#before.get(revocation.userId);
      if (!known || known.atMs <= revocation.atMs) this.#before.set(revocation.userId, { atMs: revocation.atMs, untilMs: revocation.untilMs });
    }
  }

  #notify(revocation: Revocation): void {
    for (const listener of this.#listeners) {
      try {
        listener(revocation);
      } catch {
        // one listener's failure never stops the others
      }
    }
  }
}

/** A revocation's effect on one token (for stream listeners). */
export function revokes(revocation: Revocation, token: RevocableToken): boolean {
  return revocation.kind === 'jti' ? revocation.jti === token.jti : revocation.userId === token.sub && isRevokedBefore(token, revocation.atMs);
}

export interface RevocationFollower {
  readonly mirror: RevocationMirror;
  /** resolves once the first replay has loaded (or rejects after `timeoutMs`) */
  synced(timeoutMs?: number): Promise<void>;
  close(): void;
}

type StreamEntries = Array<[string, string[]]>;

/**
 * Keeps `mirror` in step with REVOCATION_STREAM on a connection of its own (it blocks in XREAD): replays
 * the last `windowMs` on connect and on every reconnect, then follows. While Redis is down the mirror keeps
 * what it had.
 */
export function followRevocations(options: {
  redis: Redis;
  windowMs: number;
  logger: Logger;
  mirror?: RevocationMirror;
  blockMs?: number;
}): RevocationFollower {
  const mirror = options.mirror ?? new RevocationMirror();
  const blockMs = options.blockMs ?? 5_000;
  // its own connection: a blocking read must not hold up the caller's commands; commands fail fast while
  // disconnected and are never resent after a reconnect (the loop replays instead)
  const redis = options.redis.duplicate({
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: undefined,
    connectTimeout: 2_000,
    retryStrategy: (attempt: number) => Math.min(100 * attempt, 1_000),
  });
  redis.on('error', () => undefined); // the loop reports state changes
  let closed = false;
  let needReplay = true;
  let wake: (() => void) | undefined;
  const syncWaiters = new Set<() => void>();
  redis.on('close', () => {
    needReplay = true;
  });
  redis.on('ready', () => wake?.());

  const replay = async (): Promise<string> => {
    const revocations: Revocation[] = [];
    let start = String(Math.max(0, Date.now() - options.windowMs));
    let lastId = '0-0';
    for (;;) {
      const page = (await redis.xrange(REVOCATION_STREAM, start, '+', 'COUNT', 1000)) as StreamEntries;
      for (const [id, fields] of page) {
        const revocation = decodeRevocation(fields);
        if (revocation) revocations.push(revocation);
        lastId = id;
      }
      if (page.length < 1000) break;
      start = `(${lastId}`;
    }
    if (lastId === '0-0') {
      // nothing recent: follow from the newest entry, whatever its age
      const newest = (await redis.xrevrange(REVOCATION_STREAM, '+', '-', 'COUNT', 1)) as StreamEntries;
      lastId = newest[0]?.[0] ?? '0-0';
    }
    mirror.reset(revocations);
    for (const resolve of syncWaiters) resolve();
    syncWaiters.clear();
    return lastId;
  };

  const loop = async () => {
    let lastId = '0-0';
    let down = false;
    while (!closed) {
      try {
        if (redis.status === 'wait' || redis.status === 'end') await redis.connect();
        if (redis.status !== 'ready') throw new Error(`redis ${redis.status}`);
        if (needReplay) {
          needReplay = false;
          lastId = await replay();
          if (down) options.logger.info('revocation feed: replayed after reconnect');
          down = false;
        }
        const reply = (await redis.xread('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', REVOCATION_STREAM, lastId)) as Array<[string, StreamEntries]> | null;
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            lastId = id;
            const revocation = decodeRevocation(fields);
            if (revocation) mirror.apply(revocation);
          }
        }
        mirror.prune();
      } catch (error) {
        if (closed) return;
        needReplay = true;
        if (!down) options.logger.warn({ err: { message: (error as Error).message } }, 'revocation feed: redis unavailable, answering from the local copy');
        down = true;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 500);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  };
  void loop();

  return {
    mirror,
    synced(timeoutMs = 5_000) {
      if (mirror.synced) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          syncWaiters.delete(done);
          reject(new Error('revocation feed did not load'));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        syncWaiters.add(done);
      });
    },
    close() {
      closed = true;
      wake?.();
      redis.disconnect();
    },
  };
}
