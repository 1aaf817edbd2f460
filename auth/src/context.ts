import { createKeyring, type Keyring, type Logger } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Models } from './documents.ts';
import { type UsersDal, usersDal } from './features/users/users-dal.ts';
import { createMailer, type Mailer } from './lib/mailer.ts';
import type { PasswordHasher } from './lib/passwords.ts';
import { createUserEvents, type UserEvents } from './lib/user-events.ts';
import type { Stores } from './stores.ts';

/** Everything the auth features need, built once per process (or per test). */
export interface AuthContext {
  config: Config;
  logger: Logger;
  redis: Redis;
  models: Models;
  users: UsersDal;
  passwords: PasswordHasher;
  mailer: Mailer;
  events: UserEvents;
  accessKeyring: Keyring;
  refreshKeyring: Keyring;
}

export function createContext(config: Config, logger: Logger, stores: Stores): AuthContext {
  return {
    config,
    logger,
    redis: stores.redis,
    models: stores.models,
    users: usersDal(stores.models, stores.redis, config.REDIS_KEY_PREFIX),
    passwords: stores.passwords,
    mailer: createMailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, mailDir: config.MAIL_DIR }),
    events: createUserEvents({ redis: stores.redis, mongo: stores.mongo, stream: config.USER_EVENTS_STREAM, logger }),
    accessKeyring: createKeyring(config.JWT_ACCESS_SECRET, config.JWT_ACCESS_SECRET_PREVIOUS),
    refreshKeyring: createKeyring(config.JWT_REFRESH_SECRET),
  };
}
