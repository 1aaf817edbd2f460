import type { Logger } from '@platform/shared-types';
import { ROUTING } from '@platform/shared-types/express';
import { buildWebApp, type WebAsset } from '@platform/webapp/build';
import express, { type Router } from 'express';
import { SECURITY_HEADERS } from '../dashboard/dashboard-router.ts';

let built: Promise<Map<string, WebAsset>> | undefined;

/** The web app's bundle, built once per process from the sources and the lock (esbuild, in memory). */
export function webAppAssets(): Promise<Map<string, WebAsset>> {
  built ??= buildWebApp();
  return built;
}

/**
 * Serves the end-user web app at /app/: the two bundled assets, and index.html for every other /app/ path so
 * the app's own routes (the mail's /app/verify-email?token=..., a reload of /app/chat/<id>) open the right screen.
 * Public files: every API call the app makes carries the user's token.
 */
export function webAppRouter(logger: Logger): Router {
  const assets = webAppAssets();
  assets.catch((error: unknown) => logger.error({ err: error }, 'the web app could not be built'));
  const router = express.Router(ROUTING);
  router.get('/', (req, res, next) => {
    if (req.originalUrl.split('?')[0] === '/app') return res.redirect(301, '/app/');
    next();
  });
  router.get(/.*/, async (req, res, next) => {
    let files: Map<string, WebAsset>;
    try {
      files = await assets;
    } catch (error) {
      return next(error);
    }
    const isAsset = req.path.startsWith('/assets/');
    const found = files.get(isAsset ? req.path : '/');
    if (!found) return res.status(404).set(SECURITY_HEADERS).type('text/plain').send('Not found');
    // assets are named by path, not by content: revalidate every time (cheap 304s), never serve a stale bundle
    res.set({ ...SECURITY_HEADERS, 'content-type': found.type, etag: found.etag, 'cache-control': 'no-cache' });
    if (req.headers['if-none-match'] === found.etag) return res.status(304).end();
    res.send(found.body);
  });
  return router;
}
