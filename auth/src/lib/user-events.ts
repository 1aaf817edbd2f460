import { randomUUID } from 'node:crypto';
import { type Logger, USER_EVENT_FIELD, type UserEvent, type UserEventType, userEvent } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { UserDoc } from '../models.ts';

export interface UserEvents {
  append(type: UserEventType, user: UserDoc, extra?: { previousRole?: UserEvent['previousRole'] }): Promise<void>;
}

/** DESIGN section 9: one stream entry per event, field `event` holding the JSON (validated against the shared schema). */
export function createUserEvents(redis: Redis, stream: string, logger: Logger): UserEvents {
  return {
    async append(type, user, extra = {}) {
      const event = userEvent.parse({
        eventId: randomUUID(),
        type,
        occurredAt: new Date().toISOString(),
        user: { id: user._id.toString(), username: user.username, email: user.email, role: user.role, status: user.status },
        ...(extra.previousRole ? { previousRole: extra.previousRole } : {}),
      });
      try {
        // Approximate cap keeps the stream bounded; consumers read far faster than 100k events pile up.
        await redis.xadd(stream, 'MAXLEN', '~', '100000', '*', USER_EVENT_FIELD, JSON.stringify(event));
      } catch (error) {
        // The change itself is committed; a lost event is logged loudly rather than failing the request.
        logger.error({ err: error, eventId: event.eventId, type }, 'could not append user event');
      }
    },
  };
}
