import { join } from 'node:path';
import { mongoConfig, serviceConfigSchema, USER_EVENTS_STREAM } from '@platform/shared-types';
import { z } from 'zod';

const seconds = (fallback: number) => z.coerce.number().int().min(1).default(fallback);
/** <repo>/.data/mail, found from this file (auth/src/config.ts), so the default does not depend on the cwd. */
const defaultMailDir = join(new URL('../..', import.meta.url).pathname, '.data', 'mail');

export const configSchema = serviceConfigSchema({ port: 3000 }).extend({
  ...mongoConfig('auth'),
  /** bcrypt work factor: 12 in production, tests lower it */
  BCRYPT_COST: z.coerce.number().int().min(4).max(15).default(12),
  /** bcrypt worker threads (default: cores - 1, at least 1, at most 4) */
  BCRYPT_WORKERS: z.coerce.number().int().min(1).max(16).optional(),
  /** nodemailer transport URL; without it mail is written as JSON files to MAIL_DIR */
  SMTP_URL: z.string().optional(),
  MAIL_FROM: z.string().default('Platform <no-reply@platform.local>'),
  MAIL_DIR: z.string().default(defaultMailDir),
  /** where links in mails point (the web client) */
  PUBLIC_URL: z.string().default('http://127.0.0.1:8080'),
  USER_EVENTS_STREAM: z.string().min(1).default(USER_EVENTS_STREAM),
  /** how often events the request path could not append to the stream (Redis down) are relayed from the outbox */
  USER_EVENTS_RELAY_MS: z.coerce.number().int().min(10).default(1_000),
  /** prefix of auth's own Redis keys (login failure counters) */
  REDIS_KEY_PREFIX: z.string().default('auth:'),
  ACCESS_TOKEN_TTL_SECONDS: seconds(15 * 60),
  REFRESH_TOKEN_TTL_SECONDS: seconds(7 * 24 * 60 * 60),
  VERIFY_TOKEN_TTL_SECONDS: seconds(24 * 60 * 60),
  RESET_TOKEN_TTL_SECONDS: seconds(60 * 60),
  /** a refresh token presented again within this window after rotation gets the pair already issued */
  REFRESH_REUSE_GRACE_SECONDS: z.coerce.number().int().min(0).default(10),
  /** failed sign-ins of one account from one client address before that address is locked out of it */
  LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).default(5),
  LOGIN_FAILURE_WINDOW_SECONDS: seconds(15 * 60),
  LOGIN_LOCK_SECONDS: seconds(15 * 60),
  /** failed sign-ins of one account from all addresses together before the account is locked for everyone */
  LOGIN_ACCOUNT_MAX_FAILURES: z.coerce.number().int().min(1).default(50),
  LOGIN_ACCOUNT_WINDOW_SECONDS: seconds(15 * 60),
  /**
   * proxies in front of auth whose X-Forwarded-For entry is trusted: 1 = the gateway (it replaces what the
   * client sent with the address it saw); 2 when the gateway itself runs behind one trusted proxy (trustProxy)
   */
  TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(5).default(1),
  /** how often expired refresh and one-time tokens are deleted (no TTL index on FerretDB) */
  SWEEP_INTERVAL_SECONDS: seconds(10 * 60),
});

export type Config = z.infer<typeof configSchema>;
