import { createKeyring, type Logger } from '@platform/shared-types';
import { createServiceApp } from '@platform/shared-types/express';
import type { Express } from 'express';
import type { Config } from './config.ts';
import { type AuthContext, createContext } from './context.ts';
import { accountsService } from './features/accounts/accounts-service.ts';
import { oneTimeTokens } from './features/accounts/one-time-tokens.ts';
import { adminRouter } from './features/admin/admin-router.ts';
import { adminService } from './features/admin/admin-service.ts';
import { apiKeysDal } from './features/api-keys/api-keys-dal.ts';
import { apiKeysRouter } from './features/api-keys/api-keys-router.ts';
import { apiKeysService } from './features/api-keys/api-keys-service.ts';
import { internalRouter } from './features/internal/internal-router.ts';
import { profileRouter } from './features/profile/profile-router.ts';
import { profileService } from './features/profile/profile-service.ts';
import { sessionsDal } from './features/sessions/sessions-dal.ts';
import { sessionsRouter } from './features/sessions/sessions-router.ts';
import { sessionsService } from './features/sessions/sessions-service.ts';
import { usersService } from './features/users/users-service.ts';
import type { Stores } from './stores.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  stores: Stores;
}

/** The services behind the routes, shared by the app and the background sweep; each gets only what it uses. */
export function buildServices(ctx: AuthContext) {
  const { config, logger, redis, models, users, passwords, mailer, events, accessKeyring, refreshKeyring } = ctx;
  const tokens = oneTimeTokens({ models, redis, keyPrefix: config.REDIS_KEY_PREFIX });
  const sessions = sessionsService({
    config,
    logger,
    redis,
    dal: sessionsDal(models),
    users,
    oneTimeTokens: tokens,
    passwords,
    events,
    accessKeyring,
    refreshKeyring,
  });
  const accounts = accountsService({ config, logger, users, tokens, passwords, mailer, events, sessions });
  const apiKeys = apiKeysService({ dal: apiKeysDal(models, redis), users, logger });
  const admin = adminService({ users, events, redis, adminsLockKey: `${config.REDIS_KEY_PREFIX}admins-lock`, accounts, sessions, apiKeys });
  const profiles = profileService({ users, events });
  return { sessions, accounts, apiKeys, admin, profiles, users: usersService({ users }) };
}

/** Builds the auth app, not yet listening. */
export function buildApp(deps: AppDeps): Express {
  const ctx = createContext(deps.config, deps.logger, deps.stores);
  const { sessions, accounts, apiKeys, admin, profiles, users } = buildServices(ctx);
  return createServiceApp({
    name: 'auth',
    logger: deps.logger,
    internalSecret: deps.config.INTERNAL_SECRET,
    internalKeyring: createKeyring(deps.config.INTERNAL_SECRET),
    accessKeyring: ctx.accessKeyring,
    ready: deps.stores.ready,
    bodyLimit: '16kb',
    routers: [
      sessionsRouter({ config: deps.config, sessions, accounts, profiles }),
      profileRouter(profiles),
      adminRouter(admin),
      apiKeysRouter(apiKeys),
      internalRouter(users),
    ],
  });
}
