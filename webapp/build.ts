// Bundles the web app (Preact screens, marked, DOMPurify, styles) with esbuild from the lock, in memory.
// Monitoring calls buildWebApp() once when it starts and serves the result at /app/; `node build.ts` writes the
// same files to webapp/dist/ (git-ignored) to look at them.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { build } from 'esbuild';

export interface WebAsset {
  body: Buffer;
  type: string;
  etag: string;
}

const ROOT = new URL('./', import.meta.url);

function asset(body: Buffer, type: string): WebAsset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` };
}

/** The app's files by path under /app: `/` (index.html), `/assets/app.js`, `/assets/app.css`. */
export async function buildWebApp(): Promise<Map<string, WebAsset>> {
  const result = await build({
    absWorkingDir: new URL('.', ROOT).pathname,
    entryPoints: { app: 'src/main.tsx', 'app-styles': 'styles.css' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: 'out',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const assets = new Map<string, WebAsset>();
  assets.set('/', asset(readFileSync(new URL('index.html', ROOT)), 'text/html; charset=utf-8'));
  for (const file of result.outputFiles) {
    const name = basename(file.path);
    if (name === 'app.js') assets.set('/assets/app.js', asset(Buffer.from(file.contents), 'text/javascript; charset=utf-8'));
    else if (name === 'app-styles.css') assets.set('/assets/app.css', asset(Buffer.from(file.contents), 'text/css; charset=utf-8'));
  }
  if (assets.size !== 3) throw new Error(`web app build produced ${[...assets.keys()].join(', ')}`);
  return assets;
}

if (import.meta.main) {
  const assets = await buildWebApp();
  const dist = new URL('dist/assets/', ROOT);
  mkdirSync(dist, { recursive: true });
  for (const [path, file] of assets) writeFileSync(new URL(`dist${path === '/' ? '/index.html' : path}`, ROOT), file.body);
  console.log(`web app built into ${new URL('dist/', ROOT).pathname}: ${[...assets].map(([path, file]) => `${path} ${file.body.length} B`).join(', ')}`);
}
