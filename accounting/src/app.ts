import { createKeyring, type Logger, monitoringSupervisorCheck, ServiceClient, type SupervisorCheck } from '@platform/shared-types';
import { createServiceApp } from '@platform/shared-types/express';
import type { Express, RequestHandler } from 'express';
import type { Config } from './config.ts';
import type { AccountingContext } from './context.ts';
import { ensureAccount } from './features/accounts/accounts-dal.ts';
import { authUserLookup, type UserLookup } from './features/accounts/accounts-service.ts';
import { apiKeysRouter } from './features/api-keys/api-keys-router.ts';
import { authApiKeyLookup } from './features/api-keys/api-keys-service.ts';
import { creditsRouter } from './features/credits/credits-router.ts';
import { pricesRouter } from './features/prices/prices-router.ts';
import { chatStoredReplies, type StoredReplies } from './features/reconcile/chat-replies.ts';
import { reconcileRouter } from './features/reconcile/reconcile-router.ts';
import { reservationsDal } from './features/reservations/reservations-dal.ts';
import { reservationsRouter } from './features/reservations/reservations-router.ts';
import { reservationsService } from './features/reservations/reservations-service.ts';
import { usageRouter } from './features/usage/usage-router.ts';
import type { Stores } from './stores.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  stores: Stores;
  /** relationship check; defaults to monitoring over a service-to-service call */
  isSupervisorOf?: SupervisorCheck;
  /** user lookup for accounts not known yet; defaults to auth over a service-to-service call */
  lookupUser?: UserLookup;
  /** chat's stored replies for reconciliation; defaults to chat over a service-to-service call */
  storedReplies?: StoredReplies;
}

/** Accounts are created just in time from the verified identity of a user's request (no call to auth). */
function accountsJustInTime(stores: Stores): RequestHandler {
  return async (req, _res, next) => {
    if (req.actor) await ensureAccount(stores.db, req.actor);
    next();
  };
}

/** Builds the accounting app, not yet listening. */
export function buildApp(deps: AppDeps): Express {
  const { config } = deps;
  const internalKeyring = createKeyring(config.INTERNAL_SECRET);
  const client = new ServiceClient({
    caller: 'accounting',
    internalKeyring,
    baseUrls: { monitoring: config.MONITORING_URL, auth: config.AUTH_URL, chat: config.CHAT_URL },
    logger: deps.logger,
  });
  const isSupervisorOf = deps.isSupervisorOf ?? monitoringSupervisorCheck(client);
  const lookupUser = deps.lookupUser ?? authUserLookup(client);
  const storedReplies = deps.storedReplies ?? chatStoredReplies(client);
  const streams = reservationsService({ reservations: reservationsDal(deps.stores.db), ttlSeconds: config.RESERVATION_TTL_SECONDS });
  const ctx: AccountingContext = { db: deps.stores.db, config, isSupervisorOf, lookupUser, lookupApiKey: authApiKeyLookup(client), storedReplies };
  return createServiceApp({
    name: 'accounting',
    logger: deps.logger,
    internalSecret: config.INTERNAL_SECRET,
    internalKeyring,
    accessKeyring: createKeyring(config.JWT_ACCESS_SECRET, config.JWT_ACCESS_SECRET_PREVIOUS),
    ready: deps.stores.ready,
    routers: [creditsRouter(ctx), pricesRouter(ctx), usageRouter(ctx), reservationsRouter(ctx, streams), reconcileRouter(ctx), apiKeysRouter(ctx)],
    before: [['/api', accountsJustInTime(deps.stores)]],
  });
}
