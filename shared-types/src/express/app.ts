import express, { type Express, type RequestHandler } from 'express';
import type { ServiceName } from '../claims.ts';
import { ApiError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Keyring } from '../tokens.ts';
import { accessLog, gatewayIdentity, jsonBody, notFound, problemHandler, requestId, serviceAuth } from './middleware.ts';
import { type ApiRouter, buildOpenApi, ROUTING } from './route.ts';

export interface ServiceAppOptions {
  name: ServiceName;
  version?: string;
  logger: Logger;
  internalSecret: string;
  internalKeyring: Keyring;
  accessKeyring: Keyring;
  /** names each store and whether it answers; /ready is 503 unless all do */
  ready: () => Promise<Record<string, boolean>>;
  routers: ApiRouter[];
  bodyLimit?: string | number;
  /** extra handlers mounted before the API routers (static pages, multipart, SSE...) */
  before?: Array<[string, RequestHandler | express.Router]>;
}

/** The common shape of every service: request id, logs, health, identity, JSON, routes, problem errors. Not listening yet. */
export function createServiceApp(options: ServiceAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback, uniquelocal');
  app.set('query parser', 'simple');
  // the same rule as every ApiRouter and the gateway: case-sensitive, strict (DESIGN 7)
  app.set('case sensitive routing', ROUTING.caseSensitive);
  app.set('strict routing', ROUTING.strict);
  app.use(requestId());
  app.use(accessLog(options.logger));

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', service: options.name });
  });
  app.get('/ready', async (_req, res) => {
    const checks = await options.ready().catch(() => ({ stores: false }));
    const ok = Object.values(checks).every(Boolean);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable', service: options.name, checks });
  });
  const openapi = buildOpenApi({ title: `${options.name} service`, version: options.version ?? '0.1.0' }, options.routers);
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  const identity = gatewayIdentity(options.internalSecret, options.name);
  const internal = serviceAuth({ audience: options.name, internalKeyring: options.internalKeyring, accessKeyring: options.accessKeyring });
  app.use((req, res, next) => {
    if (req.path === '/internal' || req.path.startsWith('/internal/')) return internal(req, res, next);
    return identity(req, res, next);
  });
  app.use(jsonBody(options.bodyLimit ?? '100kb'));
  for (const [path, handler] of options.before ?? []) app.use(path, handler);
  for (const router of options.routers) app.use(router.router);
  app.use(notFound());
  app.use(problemHandler(options.logger));
  return app;
}

/** Throws UNAUTHENTICATED unless a user is acting. */
export function requireActor(req: express.Request) {
  if (!req.actor) throw req.authError ?? new ApiError('UNAUTHENTICATED', 'Sign in first');
  return req.actor;
}
