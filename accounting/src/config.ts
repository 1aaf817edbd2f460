import { postgresConfig, serviceConfigSchema, USER_EVENTS_STREAM } from '@platform/shared-types';
import { z } from 'zod';

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const configSchema = serviceConfigSchema({ port: 3001 }).extend({
  ...postgresConfig('accounting'),
  PG_POOL_MAX: positiveInt(10),
  /** auth answers who a user is that accounting has not heard of yet (GET /internal/users) */
  AUTH_URL: z.url().default('http://127.0.0.1:3000'),
  /** chat lists the replies it stored, for reconciliation (GET /internal/replies) */
  CHAT_URL: z.url().default('http://127.0.0.1:3002'),
  /** monitoring answers supervisor-student relationship checks */
  MONITORING_URL: z.url().default('http://127.0.0.1:3003'),
  /** model catalog that seeds prices (same file chat reads) */
  MODELS_FILE: z.string().optional(),
  /** user lifecycle events (DESIGN section 9), read through our own consumer group */
  USER_EVENTS_STREAM: z.string().min(1).default(USER_EVENTS_STREAM),
  USER_EVENTS_GROUP: z.string().min(1).default('accounting'),
  /** consumer name inside the group; defaults to host and pid */
  USER_EVENTS_CONSUMER: z.string().min(1).optional(),
  USER_EVENTS_BLOCK_MS: positiveInt(5_000),
  /** entries another consumer has left unacknowledged this long are claimed (it probably died) */
  USER_EVENTS_CLAIM_IDLE_MS: z.coerce.number().int().min(0).default(60_000),
  /** an open reservation not renewed for this long is expired by the sweeper (its holder stopped) and its hold released */
  RESERVATION_TTL_SECONDS: positiveInt(600),
  /** how often the sweeper expires reservations and allocations */
  SWEEP_INTERVAL_MS: positiveInt(30_000),
  /** how long an Idempotency-Key is remembered */
  IDEMPOTENCY_TTL_HOURS: positiveInt(24),
});

export type Config = z.infer<typeof configSchema>;
