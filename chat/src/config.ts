import { mongoConfig, serviceConfigSchema } from '@platform/shared-types';
import { z } from 'zod';

const int = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);
const optionalUrl = z.url().optional();
const optionalSecret = z.string().min(1).optional();

export const configSchema = serviceConfigSchema({ port: 3002 }).extend({
  ...mongoConfig('chat'),
  /** prefix of every Redis key and channel chat uses (tests isolate runs with it) */
  REDIS_PREFIX: z.string().default('chat:'),
  ACCOUNTING_URL: z.url().default('http://127.0.0.1:3001'),
  MONITORING_URL: z.url().default('http://127.0.0.1:3003'),
  /** model catalog file (defaults to shared-types/config/models.json) */
  MODELS_FILE: z.string().optional(),

  /** how long a chat instance answers from its model cache before re-reading it (a change is seen at once: version key) */
  MODELS_CACHE_TTL_MS: int(5_000, 10),
  /** Flowise chatflow sync period when FLOWISE_URL is set (0: only on POST /api/chat/chatflows/sync) */
  CHATFLOW_SYNC_MS: int(300_000, 0),
  /** first prices a newly synced chatflow is announced to accounting with (admins change them in accounting) */
  CHATFLOW_PRICE_INPUT_PER_1K: int(2, 1),
  CHATFLOW_PRICE_OUTPUT_PER_1K: int(4, 1),

  // providers: a cloud provider's models are offered only when its settings exist
  AWS_REGION: z.string().min(1).optional(),
  OPENAI_BASE_URL: optionalUrl,
  OPENAI_API_KEY: optionalSecret,
  FLOWISE_URL: optionalUrl,
  FLOWISE_API_KEY: optionalSecret,
  LOCAL_MODEL_TOKENS: int(200, 1),
  LOCAL_MODEL_TOKEN_DELAY_MS: int(15),
  PROVIDER_TIMEOUT_MS: int(120_000, 1),

  // streaming
  HEARTBEAT_MS: int(15_000, 10),
  MAX_MESSAGE_CHARS: int(32_000, 1),
  /** how long the per-session stream lock lives without a refresh (refreshed with every heartbeat) */
  STREAM_LOCK_TTL_MS: int(60_000, 100),
  /** events kept per session for observers that join late */
  REPLAY_MAX_EVENTS: int(2_000, 10),
  REPLAY_TTL_SECONDS: int(3_600, 1),
  /** how long a session's conversation stays in Redis after its last stream (a stream start within it reads no store) */
  CONVERSATION_CACHE_TTL_SECONDS: int(900, 1),
  /** a conversation larger than this (JSON bytes) is not cached: its streams read the store */
  CONVERSATION_CACHE_MAX_BYTES: int(1_000_000, 0),
  /**
   * how often a running stream renews its reservation and checkpoints what it produced (for the outbox to charge
   * if this process dies); at most a quarter of the TTL accounting answers with
   */
  RESERVATION_RENEW_MS: int(60_000, 50),
  /**
   * how long accounting's answer to a user's reservation lets this instance start that user's next provider call
   * alongside its reservation (when the answer left enough credits for its worst case; nothing produced is shown
   * before the reservation is confirmed, a refusal cuts the call). 0: every stream reserves before its provider starts
   */
  SPECULATIVE_START_HINT_MS: int(60_000, 0),
  /** users (and API keys) whose last answer this instance remembers for that */
  SPECULATIVE_START_HINT_ENTRIES: int(10_000, 1),
  /**
   * the longest a stream's store writes (user message, first checkpoint, reply) wait while other streams are
   * starting (before their first delta), so a burst of starts does not share the CPU with them; a stream still waits
   * for its writes before its terminal event. 0: writes start at once
   */
  STORE_DEFER_MAX_MS: int(1_000, 0),
  /**
   * streams of this instance in their start at once (from taking their session's lock until they are open: reserved,
   * head and `session` event sent); the rest wait their turn in order, holding nothing. 0 (the default): no bound.
   * In the 500-stream bench a bound of 64 measured no better than none, 16 worse (chat/README.md, "A burst of stream
   * starts"); it bounds the reservations in flight and refuses past STREAM_START_QUEUE_MAX
   */
  STREAM_START_CONCURRENCY: int(0, 0),
  /** streams that may wait for their turn; one more is refused at once (503, Retry-After) */
  STREAM_START_QUEUE_MAX: int(5_000, 0),
  /**
   * connections to each service chat calls (accounting, monitoring): a burst of stream starts reserves over this many
   * at once (with fewer, reservations queue here behind answers this process has not read yet)
   */
  SERVICE_CLIENT_CONNECTIONS: int(512, 1),
  /** outbox of charges accounting did not take yet: poll period and backoff bounds */
  OUTBOX_POLL_MS: int(1_000, 10),
  OUTBOX_BACKOFF_MIN_MS: int(500, 1),
  OUTBOX_BACKOFF_MAX_MS: int(60_000, 1),

  // files
  FILE_MAX_BYTES: int(10 * 1024 * 1024, 1),
  FILE_UPLOADS_PER_DAY: int(10, 0),
  /** bytes one user may upload per UTC day */
  FILE_BYTES_PER_DAY: int(50 * 1024 * 1024, 0),
  /** uploads one user may have running at once (all instances) */
  FILE_MAX_CONCURRENT_UPLOADS: int(2, 1),
  /** an upload body that sends nothing for this long, or is not complete after the timeout, is cut */
  FILE_UPLOAD_IDLE_MS: int(30_000, 10),
  FILE_UPLOAD_TIMEOUT_MS: int(120_000, 10),
  /** refused uploads (too large, wrong type, over quota, too many at once) per user and window before all are refused */
  FILE_REFUSED_MAX: int(30, 1),
  FILE_REFUSED_WINDOW_SECONDS: int(600, 1),
  /** how often chunks of uploads cut by a crash are looked for and removed */
  FILE_SWEEP_INTERVAL_MS: int(10 * 60_000, 100),
  FILE_PROMPT_MAX_CHARS: int(20_000, 0),
  MAX_FILES_PER_MESSAGE: int(5, 0),
});

export type Config = z.infer<typeof configSchema>;
