/**
 * DESIGN section 9: auth appends user lifecycle events to a Redis stream; each service reads it through its
 * own consumer group, at least once, and applies events idempotently (by eventId, or by version).
 */
import { z } from 'zod';
import { ROLES } from './roles.ts';

export const USER_EVENTS_STREAM = 'events:users';

export const USER_EVENT_TYPES = [
  'user.registered',
  'user.verified',
  'user.updated',
  'user.role_changed',
  'user.disabled',
  'user.logged_out',
  'user.password_changed',
] as const;
export type UserEventType = (typeof USER_EVENT_TYPES)[number];

/** The stream entry carries one field, `event`, holding this JSON. */
export const userEvent = z.object({
  eventId: z.string().min(1),
  type: z.enum(USER_EVENT_TYPES),
  occurredAt: z.string(),
  user: z.object({
    id: z.string().min(1),
    username: z.string(),
    email: z.string(),
    role: z.enum(ROLES),
    status: z.enum(['active', 'disabled']),
  }),
  /** for role changes */
  previousRole: z.enum(ROLES).optional(),
});
export type UserEvent = z.infer<typeof userEvent>;
export const USER_EVENT_FIELD = 'event';

/** The event of a stream entry's field list (`[name, value, ...]`), or undefined when it is missing or malformed. */
export function userEventFromEntry(fields: string[]): UserEvent | undefined {
  const index = fields.findIndex((field, at) => at % 2 === 0 && field === USER_EVENT_FIELD);
  if (index < 0) return undefined;
  try {
    const parsed = userEvent.safeParse(JSON.parse(fields[index + 1] ?? ''));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
