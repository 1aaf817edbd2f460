import { hostname } from 'node:os';
import { type Logger, USER_EVENT_FIELD, userEvent } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { withRetry } from '../../db.ts';
import { applyUserEvent } from './accounts-dal.ts';

export interface UserEventsOptions {
  db: Knex;
  /** the consumer takes its own connection from this one: XREADGROUP BLOCK holds it */
  redis: Redis;
  logger: Logger;
  stream: string;
  group: string;
  consumer?: string;
  blockMs: number;
  batch?: number;
  /** entries another consumer read but has not acknowledged for this long are taken over (it probably died) */
  claimIdleMs?: number;
}

type StreamEntries = Array<[id: string, fields: string[]]>;

/**
 * Keeps accounts current from the user events stream through our consumer group: at least once (entries are
 * acknowledged after they are applied; on start our own pending entries are read again, and entries other
 * consumers left pending too long are claimed), idempotent (an event
 * older than the identity already applied changes nothing). A malformed entry is logged and acknowledged.
 * Returns the stopper.
 */
export function startUserEvents(options: UserEventsOptions): () => Promise<void> {
  const { db, logger, stream, group } = options;
  const consumer = options.consumer ?? `${hostname()}-${process.pid}`;
  const redis = options.redis.duplicate();
  let stopping = false;

  const handle = async (entries: StreamEntries) => {
    for (const [id, fields] of entries) {
      const index = fields.indexOf(USER_EVENT_FIELD);
      const raw = index >= 0 ? fields[index + 1] : undefined;
      let parsed: ReturnType<typeof userEvent.safeParse> | undefined;
      try {
        parsed = userEvent.safeParse(JSON.parse(raw ?? ''));
      } catch {
        parsed = undefined;
      }
      if (parsed?.success) {
        const event = parsed.data;
        await withRetry(() => applyUserEvent(db, event));
      } else {
        logger.warn({ stream, entryId: id }, 'skipping malformed user event');
      }
      await redis.xack(stream, group, id);
    }
  };

  const read = async (from: '0' | '>') => {
    const reply = (await redis.xreadgroup('GROUP', group, consumer, 'COUNT', options.batch ?? 100, 'BLOCK', options.blockMs, 'STREAMS', stream, from)) as Array<
      [string, StreamEntries]
    > | null;
    const entries = reply?.[0]?.[1] ?? [];
    await handle(entries);
    return entries.length;
  };

  /** Takes over entries left unacknowledged by consumers that went away (a restarted process has a new name). */
  const claimStale = async () => {
    let cursor = '0-0';
    do {
      const reply = (await redis.xautoclaim(stream, group, consumer, options.claimIdleMs ?? 60_000, cursor, 'COUNT', options.batch ?? 100)) as [
        string,
        StreamEntries,
      ];
      cursor = reply[0];
      await handle(reply[1].filter((entry) => entry !== null && Array.isArray(entry[1])));
    } while (!stopping && cursor !== '0-0');
  };

  const ensureGroup = async () => {
    try {
      await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
  };

  const loop = async () => {
    const claimIdleMs = options.claimIdleMs ?? 60_000;
    let ready = false;
    let lastClaim = 0;
    while (!stopping) {
      try {
        if (!ready) {
          await ensureGroup();
          // what this consumer read but did not acknowledge before it stopped, then what dead consumers left
          while (!stopping && (await read('0')) > 0);
          await claimStale();
          lastClaim = Date.now();
          ready = true;
        }
        if (Date.now() - lastClaim > claimIdleMs) {
          lastClaim = Date.now();
          await claimStale();
        }
        await read('>');
      } catch (error) {
        if (stopping) break;
        // Redis away, or the stream (and our group with it) deleted: set up again after a pause
        ready = false;
        logger.error({ err: error }, 'user events consumer failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 1_000).unref());
      }
    }
  };

  const running = loop().catch((error: unknown) => {
    if (!stopping) logger.error({ err: error }, 'user events consumer stopped');
  });

  return async () => {
    stopping = true;
    redis.disconnect(); // ends a pending blocking read
    await running;
  };
}
