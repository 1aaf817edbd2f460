import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { ROUTING } from '@platform/shared-types/express';
import express, { type Router } from 'express';

const DASHBOARD_DIR = new URL('../../../dashboard/', import.meta.url);

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function asset(body: string, type: string): Asset {
  const buffer = Buffer.from(body);
  return { body: buffer, type, etag: `"${createHash('sha256').update(buffer).digest('base64url').slice(0, 16)}"` };
}

/**
 * The browser module is TypeScript; browsers cannot run it, so its types are stripped once when the service
 * builds its app (Node's own stripper: same erasable-syntax rule as the server code, no bundler).
 */
export function dashboardAssets(): Map<string, Asset> {
  const read = (name: string) => readFileSync(new URL(name, DASHBOARD_DIR), 'utf8');
  return new Map([
    ['/', asset(read('index.html'), 'text/html; charset=utf-8')],
    ['/app.js', asset(stripTypeScriptTypes(read('app.ts')), 'text/javascript; charset=utf-8')],
    ['/styles.css', asset(read('styles.css'), 'text/css; charset=utf-8')],
  ]);
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
export function dashboardRouter(): Router {
  const assets = dashboardAssets();
  const router = express.Router(ROUTING);
  router.get('/', (req, res, next) => {
    // /monitoring -> /monitoring/ so relative URLs resolve under the prefix
    if (req.originalUrl.split('?')[0] === '/monitoring') return res.redirect(301, '/monitoring/');
    next();
  });
  router.get(['/', '/app.js', '/styles.css'], (req, res) => {
    const found = assets.get(req.path) as Asset;
    res.set({ ...SECURITY_HEADERS, 'content-type': found.type, etag: found.etag, 'cache-control': 'no-cache' });
    if (req.headers['if-none-match'] === found.etag) return res.status(304).end();
    res.send(found.body);
  });
  return router;
}
