import type { Logger } from '@platform/shared-types';
import { ROUTING } from '@platform/shared-types/express';
import { bundleUi, type WebAsset } from '@platform/webapp/build';
import express, { type Router } from 'express';

const DASHBOARD_DIR = new URL('../../../dashboard/', import.meta.url);

let built: Promise<Map<string, WebAsset>> | undefined;

/**
 * The dashboard's files (`/`, `/app.js`, `/styles.css`), bundled once per process like the web app (esbuild, in
 * memory, from the lock): it shares the web app's API helper, chart and styles.
 */
export function dashboardAssets(): Promise<Map<string, WebAsset>> {
  built ??= bundleUi({ root: DASHBOARD_DIR, entry: 'app.ts', styles: 'styles.css', scriptPath: '/app.js', stylePath: '/styles.css' });
  return built;
}

/** strict CSP: same-origin scripts, styles and calls only; no inline code, no framing (the web app uses it too) */
export const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** Serves the supervisor dashboard at /monitoring/ (public assets; every API call it makes carries the user's token). */
export function dashboardRouter(logger: Logger): Router {
  const assets = dashboardAssets();
  assets.catch((error: unknown) => logger.error({ err: error }, 'the dashboard could not be built'));
  const router = express.Router(ROUTING);
  router.get('/', (req, res, next) => {
    // /monitoring -> /monitoring/ so relative URLs resolve under the prefix
    if (req.originalUrl.split('?')[0] === '/monitoring') return res.redirect(301, '/monitoring/');
    next();
  });
  router.get(['/', '/app.js', '/styles.css'], async (req, res, next) => {
    let found: WebAsset;
    try {
      found = (await assets).get(req.path) as WebAsset;
    } catch (error) {
      return next(error);
    }
    res.set({ ...SECURITY_HEADERS, 'content-type': found.type, etag: found.etag, 'cache-control': 'no-cache' });
    if (req.headers['if-none-match'] === found.etag) return res.status(304).end();
    res.send(found.body);
  });
  return router;
}
