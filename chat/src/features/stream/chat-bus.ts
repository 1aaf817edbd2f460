import { isTerminalEvent, type Logger, type ObserveEvent, type UserStreamEvent } from '@platform/shared-types';
import { RedisMutex } from '@platform/shared-types/redis';
import { reportRedisErrors } from '@platform/shared-types/stores/redis';
import type { ChainableCommander, Redis } from 'ioredis';

/** One event of a session as observers see it; `streamId` and `seq` order the events of one stream. */
export type SessionEvent = ObserveEvent & { streamId?: string; seq?: number };

/** Sent to every instance; the one holding the session's stream acts on it. */
export interface InterruptCommand {
  type: 'interrupt';
  sessionId: string;
  by: string;
  byUserId: string;
  reason: string;
}

type Handler = (message: string) => void;

export interface StreamTiming {
  sessionId: string;
  streamId: string;
  startedAt: string;
  firstTokenAt: string | null;
  timeToFirstTokenMs: number | null;
}

/** the first token of the stream that started last: a late write of an older stream is dropped */
const SET_FIRST_TOKEN = `if redis.call('hget', KEYS[1], 'streamId') == ARGV[1] then return redis.call('hsetnx', KEYS[1], 'firstTokenAt', ARGV[2]) else return 0 end`;

/**
 * Chat's use of Redis across instances: per-session event channels with a short replay list (observers),
 * per-user channels (the student's event stream), one control channel (interrupts), and a per-session lock so
 * only one stream runs on a session at a time. Every key and channel starts with `prefix`.
 */
export class ChatBus {
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #handlers = new Map<string, Set<Handler>>();
  readonly #options: { lockTtlMs: number; replayMax: number; replayTtlSeconds: number };
  readonly #sessionLock: RedisMutex;
  /** session events gathered in this turn of the event loop, not sent yet */
  #pending: ChainableCommander | undefined;

  constructor(redis: Redis, options: { prefix: string; logger: Logger; lockTtlMs: number; replayMax: number; replayTtlSeconds: number }) {
    this.#redis = redis;
    this.#subscriber = reportRedisErrors(redis.duplicate(), options.logger, 'chat-bus subscriber');
    this.#prefix = options.prefix;
    this.#logger = options.logger;
    this.#options = options;
    this.#sessionLock = new RedisMutex(redis, { ttlMs: options.lockTtlMs });
    this.#subscriber.on('message', (channel: string, message: string) => {
      for (const handler of this.#handlers.get(channel) ?? []) {
        try {
          handler(message);
        } catch (error) {
          this.#logger.error({ err: error, channel }, 'bus handler failed');
        }
      }
    });
  }

  key(...parts: string[]): string {
    return `${this.#prefix}${parts.join(':')}`;
  }

  /** Subscribes (shared connection, reference counted); resolves once Redis confirmed, returns the unsubscriber. */
  async subscribe(channel: string, handler: Handler): Promise<() => Promise<void>> {
    let set = this.#handlers.get(channel);
    if (!set) {
      set = new Set();
      this.#handlers.set(channel, set);
    }
    set.add(handler);
    await this.#subscriber.subscribe(channel);
    return async () => {
      const current = this.#handlers.get(channel);
      current?.delete(handler);
      if (current && current.size === 0) {
        this.#handlers.delete(channel);
        // the channel's last listener is gone either way; a failed UNSUBSCRIBE only leaves messages nobody reads
        await this.#subscriber.unsubscribe(channel).catch((error: unknown) => this.#logger.warn({ err: error, channel }, 'could not unsubscribe'));
      }
    };
  }

  // ---- session events (observers) ----
  sessionChannel(sessionId: string): string {
    return this.key('session', sessionId);
  }

  /**
   * Forgets the previous stream's events, so a late observer replays only the current one: sent with the stream's
   * `session` event (the next publish), in the same pipeline and before it, so no round trip is waited for.
   */
  startReplay(sessionId: string): void {
    this.#gathered().del(this.key('replay', sessionId));
  }

  /**
   * Publishes without waiting: one connection keeps the order, and a slow Redis must not stall the stream. The
   * `session` events and deltas of every stream are gathered for one turn of the event loop and sent as one pipeline
   * (one write to Redis, not one per event per stream: with hundreds of streams the writes, not Redis, are what
   * costs); a terminal event sends what is gathered and itself at once, so it is on the wire before whatever the
   * stream does next (letting go of its lock, the next stream clearing the replay list).
   */
  publishSessionEvent(sessionId: string, event: SessionEvent, options: { replay: boolean }): void {
    const payload = JSON.stringify(event);
    if (options.replay) {
      const list = this.key('replay', sessionId);
      const pipeline = this.#gathered().rpush(list, payload).publish(this.sessionChannel(sessionId), payload);
      this.#recordTiming(pipeline, sessionId, event);
      if ((event.seq ?? 0) % 100 === 0 || event.event !== 'delta')
        pipeline.ltrim(list, -this.#options.replayMax, -1).expire(list, this.#options.replayTtlSeconds);
      if (isTerminalEvent(event)) this.#sendGathered();
    } else {
      this.#redis.publish(this.sessionChannel(sessionId), payload).catch((error: unknown) => {
        this.#logger.warn({ err: error, sessionId }, 'publishing a session event failed');
      });
    }
  }

  /** the pipeline of this turn's session events (sent by the check phase, or earlier by #sendGathered) */
  #gathered(): ChainableCommander {
    if (this.#pending) return this.#pending;
    const pipeline = this.#redis.pipeline();
    this.#pending = pipeline;
    setImmediate(() => {
      if (this.#pending === pipeline) this.#sendGathered();
    });
    return pipeline;
  }

  #sendGathered(): void {
    const pipeline = this.#pending;
    this.#pending = undefined;
    if (!pipeline) return;
    const commands = pipeline.length;
    pipeline.exec().catch((error: unknown) => this.#logger.warn({ err: error, commands }, 'publishing session events failed'));
  }

  /**
   * A stream's start (its `session` event, seq 0) and first token (its first `delta`, seq 1: the stream emits
   * text right after `session`) in a per-session hash, for the dashboard's time to first token. A first token
   * is kept only for the stream that started last.
   */
  #recordTiming(pipeline: ChainableCommander, sessionId: string, event: SessionEvent): void {
    if (event.streamId === undefined) return;
    const key = this.key('timing', sessionId);
    const now = String(Date.now());
    if (event.seq === 0 && event.event === 'session') {
      pipeline.del(key).hset(key, 'streamId', event.streamId, 'startedAt', now).expire(key, this.#options.replayTtlSeconds);
    } else if (event.seq === 1 && event.event === 'delta') {
      pipeline.eval(SET_FIRST_TOKEN, 1, key, event.streamId, now);
    }
  }

  /** The recorded start and first token of the sessions' latest streams (sessions without one are left out). */
  async streamTimings(sessionIds: string[]): Promise<StreamTiming[]> {
    const pipeline = this.#redis.pipeline();
    for (const sessionId of sessionIds) pipeline.hgetall(this.key('timing', sessionId));
    const answers = (await pipeline.exec()) ?? [];
    return sessionIds.flatMap((sessionId, i) => {
      const [error, hash] = answers[i] ?? [null, null];
      const found = hash as Record<string, string> | null;
      if (error || !found?.streamId || !found.startedAt) return [];
      const startedAt = Number(found.startedAt);
      const firstToken = found.firstTokenAt ? Number(found.firstTokenAt) : null;
      return [
        {
          sessionId,
          streamId: found.streamId,
          startedAt: new Date(startedAt).toISOString(),
          firstTokenAt: firstToken === null ? null : new Date(firstToken).toISOString(),
          timeToFirstTokenMs: firstToken === null ? null : Math.max(0, firstToken - startedAt),
        },
      ];
    });
  }

  async replay(sessionId: string): Promise<SessionEvent[]> {
    const items = await this.#redis.lrange(this.key('replay', sessionId), 0, -1);
    return items.map((item) => JSON.parse(item) as SessionEvent);
  }

  // ---- user events (the student's own event stream) ----
  userChannel(userId: string): string {
    return this.key('user', userId);
  }

  async publishUserEvent(userId: string, event: UserStreamEvent): Promise<void> {
    await this.#redis.publish(this.userChannel(userId), JSON.stringify(event));
  }

  // ---- control (interrupts reach the holding instance) ----
  get controlChannel(): string {
    return this.key('control');
  }

  async publishControl(command: InterruptCommand): Promise<void> {
    await this.#redis.publish(this.controlChannel, JSON.stringify(command));
  }

  // ---- one stream per session (taken and released with the conversation cache, in its scripts) ----
  async refreshLock(sessionId: string, holder: string): Promise<void> {
    await this.#sessionLock.extend(this.key('lock', sessionId), holder);
  }

  async isLocked(sessionId: string): Promise<boolean> {
    return this.#sessionLock.isHeld(this.key('lock', sessionId));
  }

  async close(): Promise<void> {
    this.#handlers.clear();
    await this.#subscriber.quit().catch((error: unknown) => this.#logger.warn({ err: error }, 'could not close the subscriber connection'));
  }
}
