import { randomUUID } from 'node:crypto';
import type { Logger, RelationshipCheck } from '@platform/shared-types';
import type { Redis } from 'ioredis';

export interface Pair {
  supervisorId: string;
  studentId: string;
}

export const pairKey = (pair: Pair) => `${pair.supervisorId}\u0000${pair.studentId}`;

/**
 * A short in-process cache of relationship checks. A generation counter makes a read that raced with a
 * write unable to store its (possibly stale) answer: `begin()` before the database read, `store()` after.
 */
export class CheckCache {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { value: RelationshipCheck; expiresAt: number }>();
  #generation = 0;

  constructor(ttlMs: number, maxEntries = 10_000) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  get(pair: Pair): RelationshipCheck | undefined {
    if (this.#ttlMs === 0) return undefined;
    const key = pairKey(pair);
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  begin(): number {
    return this.#generation;
  }

  store(pair: Pair, value: RelationshipCheck, generation: number): void {
    if (this.#ttlMs === 0 || generation !== this.#generation) return;
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(pairKey(pair), { value, expiresAt: Date.now() + this.#ttlMs });
  }

  invalidate(pairs: Pair[]): void {
    this.#generation++;
    for (const pair of pairs) this.#entries.delete(pairKey(pair));
  }
}

type ChangeListener = (pairs: Pair[]) => void;

/**
 * Tells this instance (synchronously, before a write answers) and every other monitoring instance (Redis
 * pub/sub) which pairs changed, so caches drop them and open observe relays can be closed.
 */
export class RelationshipChanges {
  readonly #instanceId = randomUUID();
  readonly #listeners: ChangeListener[] = [];
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #channel: string;
  readonly #logger: Logger;

  constructor(options: { publisher: Redis; subscriber: Redis; channel: string; logger: Logger }) {
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#channel = options.channel;
    this.#logger = options.logger;
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      try {
        const parsed = JSON.parse(message) as { origin?: string; pairs?: Pair[] };
        if (parsed.origin === this.#instanceId || !Array.isArray(parsed.pairs)) return;
        this.#emit(parsed.pairs.filter((p) => typeof p?.supervisorId === 'string' && typeof p?.studentId === 'string'));
      } catch (error) {
        this.#logger.warn({ err: error }, 'malformed relationship change message');
      }
    });
  }

  async start(): Promise<void> {
    await this.#subscriber.subscribe(this.#channel);
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  /** Applies locally at once, then tells the other instances (best effort: their cache TTL bounds a lost message). */
  async publish(pairs: Pair[]): Promise<void> {
    if (pairs.length === 0) return;
    this.#emit(pairs);
    await this.#publisher.publish(this.#channel, JSON.stringify({ origin: this.#instanceId, pairs })).catch((error: unknown) => {
      this.#logger.warn({ err: error }, 'could not broadcast relationship change');
    });
  }

  #emit(pairs: Pair[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(pairs);
      } catch (error) {
        this.#logger.error({ err: error }, 'relationship change listener failed');
      }
    }
  }
}
