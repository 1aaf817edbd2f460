import { createKeyring, type Logger } from '@platform/shared-types';
import { type ApiRouter, createServiceApp } from '@platform/shared-types/express';
import type { Express } from 'express';
import type { Config } from './config.ts';
import type { Stores } from './stores.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  stores: Stores;
}

/** Builds the auth app, not yet listening. */
export function buildApp(deps: AppDeps): Express {
  const { config } = deps;
  const routers: ApiRouter[] = [];
  return createServiceApp({
    name: 'auth',
    logger: deps.logger,
    internalSecret: config.INTERNAL_SECRET,
    internalKeyring: createKeyring(config.INTERNAL_SECRET),
    accessKeyring: createKeyring(config.JWT_ACCESS_SECRET, config.JWT_ACCESS_SECRET_PREVIOUS),
    ready: deps.stores.ready,
    routers,
  });
}
