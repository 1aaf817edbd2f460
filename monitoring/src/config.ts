import { postgresConfig, serviceConfigSchema, USER_EVENTS_STREAM } from '@platform/shared-types';
import { z } from 'zod';

const serviceUrl = (fallback: string) => z.url({ protocol: /^https?$/ }).default(fallback);
const millis = (fallback: number) => z.coerce.number().int().min(0).max(600_000).default(fallback);

export const configSchema = serviceConfigSchema({ port: 3003 }).extend({
  ...postgresConfig('monitoring'),
  AUTH_URL: serviceUrl('http://127.0.0.1:3000'),
  ACCOUNTING_URL: serviceUrl('http://127.0.0.1:3001'),
  CHAT_URL: serviceUrl('http://127.0.0.1:3002'),
  /** Redis stream auth appends user lifecycle events to (DESIGN section 9); read through consumer group `monitoring` */
  USER_EVENTS_STREAM: z.string().min(1).default(USER_EVENTS_STREAM),
  /** how long one XREADGROUP blocks waiting for events */
  USER_EVENTS_BLOCK_MS: millis(5_000),
  /** Redis pub/sub channel that tells every monitoring instance which relationship pairs changed */
  RELATIONSHIP_CHANGES_CHANNEL: z.string().min(1).default('monitoring:relationships:changed'),
  /** in-process cache of relationship checks (0 disables); writes invalidate it before they answer */
  CHECK_CACHE_TTL_MS: millis(2_000),
  /** SSE comment line sent to observers when nothing else was sent for this long */
  OBSERVE_HEARTBEAT_MS: z.coerce.number().int().min(50).max(600_000).default(15_000),
  /** timeout of lookups in auth and accounting (the student list answers without balances when accounting is slow) */
  UPSTREAM_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(3_000),
});

export type Config = z.infer<typeof configSchema>;
