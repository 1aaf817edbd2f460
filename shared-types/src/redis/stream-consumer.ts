import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { reportRedisErrors } from '../stores/redis.ts';

type StreamEntry = [id: string, fields: string[]];

export interface StreamConsumerOptions<T> {
  /** the consumer takes a connection of its own from this one: XREADGROUP BLOCK holds it */
  redis: Redis;
  stream: string;
  group: string;
  /** the name inside the group; default host, pid and a random suffix (a restarted process is a new consumer) */
  consumer?: string;
  /** the entry's value, or undefined when it is malformed (logged, acknowledged, skipped) */
  parse: (fields: string[]) => T | undefined;
  /** must be idempotent: an entry is applied at least once; the entry is acknowledged only after it resolves */
  apply: (value: T) => Promise<unknown>;
  logger: Logger;
  /** how long one XREADGROUP waits for new entries (default 5 s) */
  blockMs?: number;
  /** entries read at once (default 100) */
  batch?: number;
  /** entries another consumer has left unacknowledged this long are claimed: it probably died (default 60 s) */
  claimIdleMs?: number;
  /** pause after a failed read or apply before the pending entries are read again (default 1 s) */
  retryMs?: number;
}

/**
 * Reads a Redis stream through a consumer group, at least once: the group is created when missing (from the
 * stream's start), this consumer's own pending entries are read first, entries of dead consumers are claimed
 * (XAUTOCLAIM) on start and every claimIdleMs / 2, then new entries are read in batches. An entry is
 * acknowledged after `apply` resolved; a failed apply leaves it (and the rest of its batch) pending, and it is
 * read again after a pause. Malformed entries are logged and acknowledged so they cannot block the stream.
 */
export class StreamConsumer<T> {
  readonly #options: StreamConsumerOptions<T>;
  readonly #redis: Redis;
  readonly #consumer: string;
  readonly #blockMs: number;
  readonly #batch: number;
  readonly #claimIdleMs: number;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: StreamConsumerOptions<T>) {
    this.#options = options;
    this.#redis = reportRedisErrors(options.redis.duplicate(), options.logger, `stream consumer ${options.group}`);
    this.#consumer = options.consumer ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.#blockMs = options.blockMs ?? 5_000;
    this.#batch = options.batch ?? 100;
    this.#claimIdleMs = options.claimIdleMs ?? 60_000;
  }

  get consumer(): string {
    return this.#consumer;
  }

  start(): this {
    this.#loop ??= this.#run();
    return this;
  }

  /** Ends the loop (a blocked read is cut) and closes the consumer's connection. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    this.#redis.disconnect();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let ready = false;
    let lastClaim = 0;
    while (!this.#stopping) {
      try {
        if (!ready) {
          await this.#ensureGroup();
          // what this consumer read but did not acknowledge (a failed apply), then what dead consumers left
          while (!this.#stopping && (await this.#readAndApply('0')) > 0);
          lastClaim = Date.now();
          await this.#claimStale();
          ready = true;
        }
        if (Date.now() - lastClaim >= this.#claimIdleMs / 2) {
          lastClaim = Date.now();
          await this.#claimStale();
        }
        await this.#readAndApply('>');
      } catch (error) {
        if (this.#stopping) break;
        // an apply failed, Redis is away, or the stream (and our group with it) was deleted: set up again
        ready = false;
        this.#options.logger.warn({ err: error, stream: this.#options.stream, group: this.#options.group }, 'stream consumer: read or apply failed; retrying');
        await this.#pause(this.#options.retryMs ?? 1_000);
      }
    }
  }

  async #ensureGroup(): Promise<void> {
    try {
      await this.#redis.xgroup('CREATE', this.#options.stream, this.#options.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
  }

  /** One batch: this consumer's pending entries ('0') or new ones ('>', blocking); returns how many were read. */
  async #readAndApply(from: '0' | '>'): Promise<number> {
    const { stream, group } = this.#options;
    const args: Array<string | number> = ['GROUP', group, this.#consumer, 'COUNT', this.#batch];
    if (from === '>') args.push('BLOCK', this.#blockMs);
    const reply = (await this.#redis.call('XREADGROUP', ...args, 'STREAMS', stream, from)) as Array<[string, StreamEntry[]]> | null;
    const entries = reply?.[0]?.[1] ?? [];
    for (const entry of entries) await this.#handle(entry);
    return entries.length;
  }

  /** Takes over entries other consumers left unacknowledged for claimIdleMs, and applies them. */
  async #claimStale(): Promise<void> {
    const { stream, group } = this.#options;
    let cursor = '0-0';
    do {
      const reply = (await this.#redis.call('XAUTOCLAIM', stream, group, this.#consumer, this.#claimIdleMs, cursor, 'COUNT', this.#batch)) as [
        string,
        Array<StreamEntry | null>,
      ];
      cursor = reply[0];
      // entries deleted from the stream meanwhile come back as null (Redis 6) or without fields
      for (const entry of reply[1]) if (entry && Array.isArray(entry[1])) await this.#handle(entry);
    } while (!this.#stopping && cursor !== '0-0');
  }

  async #handle([id, fields]: StreamEntry): Promise<void> {
    const { stream, group, logger } = this.#options;
    // a pending entry deleted from the stream meanwhile has no fields: nothing to apply
    const value = Array.isArray(fields) ? this.#options.parse(fields) : undefined;
    if (value === undefined) logger.warn({ stream, entryId: id }, 'stream consumer: malformed entry skipped');
    else await this.#options.apply(value);
    await this.#redis.xack(stream, group, id);
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
