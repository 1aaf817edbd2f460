import { hostname } from 'node:os';
import { type Logger, USER_EVENT_FIELD, type UserEvent, userEvent } from '@platform/shared-types';
import type { Redis } from 'ioredis';

export const USER_EVENTS_GROUP = 'monitoring';
/** pending entries idle this long (their consumer died) are claimed by a live one */
const CLAIM_IDLE_MS = 60_000;
const BATCH = 50;

type StreamEntry = [id: string, fields: string[]];

/**
 * Reads `events:users` through consumer group `monitoring` (DESIGN section 9): at least once, so `apply` must be
 * idempotent. An entry is acknowledged after it was applied; a failure leaves it pending and it is read again
 * (this consumer's own pending list first, then idle entries of dead consumers through XAUTOCLAIM).
 * Malformed entries are logged and acknowledged so they cannot block the stream.
 */
export class UserEventsConsumer {
  readonly #redis: Redis;
  readonly #stream: string;
  readonly #blockMs: number;
  readonly #apply: (event: UserEvent) => Promise<unknown>;
  readonly #logger: Logger;
  readonly #consumer = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  /** `redis` must be a connection of its own: XREADGROUP BLOCK holds it. */
  constructor(options: { redis: Redis; stream: string; blockMs: number; apply: (event: UserEvent) => Promise<unknown>; logger: Logger }) {
    this.#redis = options.redis;
    this.#stream = options.stream;
    this.#blockMs = options.blockMs;
    this.#apply = options.apply;
    this.#logger = options.logger;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    this.#redis.disconnect(); // interrupts a blocked XREADGROUP
    await this.#loop;
  }

  async #run(): Promise<void> {
    let readPending = true;
    let lastClaim = 0;
    while (!this.#stopping) {
      try {
        await this.#ensureGroup();
        if (Date.now() - lastClaim >= CLAIM_IDLE_MS / 2) {
          lastClaim = Date.now();
          await this.#claimAbandoned();
        }
        const entries = await this.#read(readPending ? '0' : '>');
        if (readPending && entries.length === 0) readPending = false;
        for (const entry of entries) await this.#handle(entry);
      } catch (error) {
        if (this.#stopping) break;
        // the stream (and with it the group) was deleted: create both again
        if (String((error as Error).message).includes('NOGROUP')) this.#groupReady = false;
        this.#logger.warn({ err: { message: (error as Error).message } }, 'user events: read or apply failed, retrying');
        readPending = true;
        await this.#pause(1_000);
      }
    }
  }

  #groupReady = false;
  async #ensureGroup(): Promise<void> {
    if (this.#groupReady) return;
    try {
      // from the start of the stream: replaying old events is harmless (they only end pairs older than themselves)
      await this.#redis.xgroup('CREATE', this.#stream, USER_EVENTS_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
    this.#groupReady = true;
  }

  async #read(from: '0' | '>'): Promise<StreamEntry[]> {
    const args: Array<string | number> = ['GROUP', USER_EVENTS_GROUP, this.#consumer, 'COUNT', BATCH];
    if (from === '>') args.push('BLOCK', this.#blockMs);
    const reply = (await this.#redis.call('XREADGROUP', ...args, 'STREAMS', this.#stream, from)) as Array<[string, StreamEntry[]]> | null;
    return reply?.[0]?.[1] ?? [];
  }

  async #claimAbandoned(): Promise<void> {
    let cursor = '0-0';
    do {
      const reply = (await this.#redis.call('XAUTOCLAIM', this.#stream, USER_EVENTS_GROUP, this.#consumer, CLAIM_IDLE_MS, cursor, 'COUNT', BATCH)) as [
        string,
        StreamEntry[],
      ];
      cursor = reply[0];
      for (const entry of reply[1]) if (entry?.[1]) await this.#handle(entry);
    } while (cursor !== '0-0' && !this.#stopping);
  }

  async #handle([id, fields]: StreamEntry): Promise<void> {
    const index = fields.indexOf(USER_EVENT_FIELD);
    const raw = index >= 0 && index % 2 === 0 ? fields[index + 1] : undefined;
    let event: UserEvent | undefined;
    try {
      const parsed = userEvent.safeParse(JSON.parse(raw ?? ''));
      if (parsed.success) event = parsed.data;
    } catch {
      event = undefined;
    }
    if (!event) this.#logger.warn({ entryId: id }, 'user events: malformed entry skipped');
    else {
      const deactivated = await this.#apply(event);
      this.#logger.info({ entryId: id, eventId: event.eventId, type: event.type, deactivated }, 'user event applied');
    }
    await this.#redis.xack(this.#stream, USER_EVENTS_GROUP, id);
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
