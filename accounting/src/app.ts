import { createKeyring, type Logger, monitoringSupervisorCheck, ServiceClient, type SupervisorCheck } from '@platform/shared-types';
import { createServiceApp } from '@platform/shared-types/express';
import type { Express, RequestHandler } from 'express';
import type { Config } from './config.ts';
import type { AccountingContext } from './context.ts';
import { type AccountsDal, accountsDal } from './features/accounts/accounts-dal.ts';
import { authUserLookup, type UserLookup } from './features/accounts/accounts-service.ts';
import { apiKeysDal } from './features/api-keys/api-keys-dal.ts';
import { apiKeysRouter } from './features/api-keys/api-keys-router.ts';
import { apiKeysService, authApiKeyLookup } from './features/api-keys/api-keys-service.ts';
import { creditsDal } from './features/credits/credits-dal.ts';
import { creditsRouter } from './features/credits/credits-router.ts';
import { creditsService } from './features/credits/credits-service.ts';
import { pricesDal } from './features/prices/prices-dal.ts';
import { pricesRouter } from './features/prices/prices-router.ts';
import { pricesService } from './features/prices/prices-service.ts';
import { chatStoredReplies, type StoredReplies } from './features/reconcile/chat-replies.ts';
import { reconcileRouter } from './features/reconcile/reconcile-router.ts';
import { reservationsDal } from './features/reservations/reservations-dal.ts';
import { reservationsRouter } from './features/reservations/reservations-router.ts';
import { reservationsService } from './features/reservations/reservations-service.ts';
import { usageDal } from './features/usage/usage-dal.ts';
import { usageRouter } from './features/usage/usage-router.ts';
import { usageService } from './features/usage/usage-service.ts';
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
function accountsJustInTime(accounts: Pick<AccountsDal, 'ensureAccount'>): RequestHandler {
  return async (req, _res, next) => {
    if (req.actor) await accounts.ensureAccount(req.actor);
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
  const { db } = deps.stores;
  const ttlSeconds = config.RESERVATION_TTL_SECONDS;
  const accounts = accountsDal(db);
  const streams = reservationsService({ reservations: reservationsDal(db), ttlSeconds });
  const prices = pricesService({ prices: pricesDal(db) });
  const usage = usageService({ usage: usageDal(db), accounts, prices });
  const apiKeys = apiKeysService({ keys: apiKeysDal(db), accounts, lookup: authApiKeyLookup(client), ttlSeconds });
  const ctx: AccountingContext = { db, config, isSupervisorOf, lookupUser, storedReplies };
  return createServiceApp({
    name: 'accounting',
    logger: deps.logger,
    internalSecret: config.INTERNAL_SECRET,
    internalKeyring,
    accessKeyring: createKeyring(config.JWT_ACCESS_SECRET, config.JWT_ACCESS_SECRET_PREVIOUS),
    ready: deps.stores.ready,
    routers: [
      creditsRouter(ctx, creditsService({ db, credits: creditsDal(db), accounts, prices })),
      pricesRouter(ctx, prices),
      usageRouter(ctx, usage),
      reservationsRouter(ctx, streams, apiKeys),
      reconcileRouter(ctx),
      apiKeysRouter(ctx, apiKeys),
    ],
    before: [['/api', accountsJustInTime(accounts)]],
  });
}
