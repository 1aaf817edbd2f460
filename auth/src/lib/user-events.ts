import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { type Logger, USER_EVENT_FIELD, type UserEvent, type UserEventType, userEvent } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import { type Connection, type Model, Schema } from 'mongoose';
import type { UserDoc } from '../documents.ts';

export interface UserEvents {
  append(type: UserEventType, user: UserDoc, extra?: { previousRole?: UserEvent['previousRole'] }): Promise<void>;
}

/** An event not yet appended to the Redis stream (DESIGN 9 promises at least once: it waits here until it is). */
interface OutboxDoc {
  _id: string;
  /** the event's JSON, exactly as it goes into the stream */
  event: string;
  createdAt: Date;
}

const outboxSchema = new Schema<OutboxDoc>(
  { _id: { type: String, required: true }, event: { type: String, required: true }, createdAt: { type: Date, required: true } },
  { versionKey: false },
);
outboxSchema.index({ createdAt: 1 });

function outboxModel(connection: Connection): Model<OutboxDoc> {
  return (
    (connection.models.UserEventOutbox as Model<OutboxDoc> | undefined) ?? connection.model<OutboxDoc>('UserEventOutbox', outboxSchema, 'user_event_outbox')
  );
}

/**
 * Appends once per event id: a marker key set in the same script as the XADD, so the request path and the relay
 * (or two relays) racing for one event, or a relay retrying after it could not delete the outbox entry, add one
 * stream entry, never two. The marker outlives any outage the outbox rides out.
 */
const APPEND_ONCE = `
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', '100000', '*', ARGV[1], ARGV[2])
end
return false`;
const MARKER_TTL_SECONDS = 7 * 86_400;
/** how long a request waits for the stream append before leaving the event to the relay */
const REQUEST_APPEND_WAIT_MS = 1_000;

interface Outbox {
  model: Model<OutboxDoc>;
  redis: Redis;
  stream: string;
}

/** Appends one outbox entry to the stream (once, whoever calls) and removes it from the outbox. */
async function publish(outbox: Outbox, doc: OutboxDoc): Promise<void> {
  await outbox.redis.eval(APPEND_ONCE, 2, outbox.stream, `${outbox.stream}:sent:${doc._id}`, USER_EVENT_FIELD, doc.event, MARKER_TTL_SECONDS);
  await outbox.model.deleteOne({ _id: doc._id });
}

/**
 * DESIGN section 9: one stream entry per event, field `event` holding the JSON (validated against the shared schema).
 * The event is written to auth's own store first (the outbox) and appended to the stream right away; when Redis is
 * down the request goes on, and the relay (`startUserEventsRelay`) appends it when Redis is back.
 */
export function createUserEvents(options: { redis: Redis; mongo: Connection; stream: string; logger: Logger }): UserEvents {
  const outbox: Outbox = { model: outboxModel(options.mongo), redis: options.redis, stream: options.stream };
  const { logger } = options;
  return {
    async append(type, user, extra = {}) {
      const event = userEvent.parse({
        eventId: randomUUID(),
        type,
        occurredAt: new Date().toISOString(),
        user: { id: user._id.toString(), username: user.username, email: user.email, role: user.role, status: user.status },
        ...(extra.previousRole ? { previousRole: extra.previousRole } : {}),
      });
      const doc: OutboxDoc = { _id: event.eventId, event: JSON.stringify(event), createdAt: new Date() };
      try {
        await outbox.model.create(doc);
      } catch (error) {
        // the store just took the change itself; if it cannot take the event, the stream is the only place left
        logger.error({ err: error, eventId: event.eventId, type }, 'could not store a user event in the outbox; appending directly');
        await publish(outbox, doc).catch((cause: unknown) => logger.error({ err: cause, eventId: event.eventId, type }, 'user event lost'));
        return;
      }
      const appended = publish(outbox, doc).then(
        () => true,
        (error: unknown) => {
          logger.warn({ err: error, eventId: event.eventId, type }, 'could not append a user event; the relay will');
          return false;
        },
      );
      await Promise.race([appended, delay(REQUEST_APPEND_WAIT_MS, false, { ref: false })]);
    },
  };
}

/**
 * Relays outbox entries the request path could not append (Redis was down, or the process died in between), oldest
 * first, every `pollMs`. Entries younger than one period are left to the request that wrote them. Returns the stopper.
 */
export function startUserEventsRelay(options: { redis: Redis; mongo: Connection; stream: string; logger: Logger; pollMs: number }): () => Promise<void> {
  const outbox: Outbox = { model: outboxModel(options.mongo), redis: options.redis, stream: options.stream };
  let running: Promise<void> | undefined;
  const pass = async () => {
    const due = await outbox.model
      .find({ createdAt: { $lte: new Date(Date.now() - options.pollMs) } })
      .sort({ createdAt: 1, _id: 1 })
      .limit(100)
      .lean<OutboxDoc[]>();
    for (const doc of due) await publish(outbox, doc);
    if (due.length > 0) options.logger.info({ relayed: due.length }, 'user events relayed from the outbox');
  };
  const timer = setInterval(() => {
    running ??= pass()
      .catch((error: unknown) => options.logger.warn({ err: error }, 'user events relay: Redis or the store unavailable, retrying'))
      .finally(() => {
        running = undefined;
      });
  }, options.pollMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
