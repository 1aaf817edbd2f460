import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PROBLEM_CONTENT_TYPE, problem } from '@platform/shared-types';
import type { Exchange } from '../engine/exchange.ts';

/**
 * The browsable API reference at GET /api/docs: Swagger UI from the swagger-ui-dist package, served by the
 * gateway itself (no CDN) under a CSP that allows our own scripts and styles only (no inline code, no
 * eval, no other origin). The page loads the merged document from /api/docs/openapi.json.
 * Clients that do not ask for HTML (schemathesis, curl, SDK generators) get the JSON document at /api/docs too.
 */
export const DOCS_PAGE_PATH = '/api/docs';
export const DOCS_JSON_PATH = '/api/docs/openapi.json';
const ASSETS_PREFIX = '/api/docs/assets/';

export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Platform API reference</title>
<link rel="stylesheet" href="${ASSETS_PREFIX}swagger-ui.css">
<link rel="stylesheet" href="${ASSETS_PREFIX}docs.css">
<link rel="icon" type="image/png" href="${ASSETS_PREFIX}favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${ASSETS_PREFIX}swagger-ui-bundle.js"></script>
<script src="${ASSETS_PREFIX}docs.js"></script>
</body>
</html>
`;

// our initializer: an inline script would need 'unsafe-inline'
const INIT_SCRIPT = `window.ui = SwaggerUIBundle({
  url: ${JSON.stringify(DOCS_JSON_PATH)},
  dom_id: '#swagger-ui',
  deepLinking: true,
  docExpansion: 'list',
  tryItOutEnabled: false,
  persistAuthorization: false,
  validatorUrl: 'none',
});
`;
const PAGE_CSS = 'body { margin: 0; }\n';

const MEDIA_TYPES = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  png: 'image/png',
} as const;
/** the files of swagger-ui-dist the page uses, read once on first use; nothing else of the package is served */
const PACKAGE_ASSETS = ['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png', 'favicon-16x16.png'];

interface Asset {
  body: Buffer;
  type: string;
}
let assets: Map<string, Asset> | undefined;

function loadAssets(): Map<string, Asset> {
  if (assets) return assets;
  const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const loaded = new Map<string, Asset>();
  for (const name of PACKAGE_ASSETS) {
    loaded.set(name, { body: readFileSync(join(dist, name)), type: MEDIA_TYPES[name.split('.').pop() as keyof typeof MEDIA_TYPES] });
  }
  loaded.set('docs.js', { body: Buffer.from(INIT_SCRIPT), type: MEDIA_TYPES.js });
  loaded.set('docs.css', { body: Buffer.from(PAGE_CSS), type: MEDIA_TYPES.css });
  assets = loaded;
  return loaded;
}

/** HTML only for a client that asks for it: browsers send text/html first, tools send JSON or *\/*. */
function wantsHtml(accept: string | undefined): boolean {
  return /(^|,)\s*text\/html/i.test(accept ?? '');
}

function send(ex: Exchange, status: number, headers: Record<string, string>, body: string | Buffer) {
  const security = { 'content-security-policy': DOCS_CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };
  ex.res.writeHead(status, { ...ex.responseHeaders, ...security, ...headers, 'content-length': String(Buffer.byteLength(body)) });
  ex.res.end(ex.method === 'HEAD' ? undefined : body);
  ex.answered = true;
}

/**
 * Answers the page and its assets; returns false when the JSON document is what the caller wants
 * (/api/docs/openapi.json, or /api/docs without text/html in Accept).
 */
export function serveDocsUi(ex: Exchange): boolean {
  if (ex.matchPath === DOCS_JSON_PATH) return false;
  if (ex.matchPath === DOCS_PAGE_PATH) {
    ex.responseHeaders.vary = ex.responseHeaders.vary ? `${ex.responseHeaders.vary}, Accept` : 'Accept';
    if (!wantsHtml(ex.req.headers.accept)) return false;
    send(ex, 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }, PAGE);
    return true;
  }
  const asset = ex.matchPath.startsWith(ASSETS_PREFIX) ? loadAssets().get(ex.matchPath.slice(ASSETS_PREFIX.length)) : undefined;
  if (asset) {
    send(ex, 200, { 'content-type': asset.type, 'cache-control': 'public, max-age=3600' }, asset.body);
    return true;
  }
  const body = JSON.stringify(problem('NOT_FOUND', 'No such documentation resource', ex.requestId));
  send(ex, 404, { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' }, body);
  return true;
}
