// Bundles the web app (Preact screens, marked, DOMPurify, styles) with esbuild from the lock, in memory, and the
// dashboard the same way (bundleUi). Monitoring calls buildWebApp() once when it starts and serves the result at /app/; `node build.ts` writes the
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

/** One UI bundled from `root`: `index.html`, the entry script and its styles (Preact JSX, minified ESM). */
export async function bundleUi(options: { root: URL; entry: string; styles: string; scriptPath: string; stylePath: string }): Promise<Map<string, WebAsset>> {
  const result = await build({
    absWorkingDir: options.root.pathname,
    entryPoints: { 'ui-script': options.entry, 'ui-styles': options.styles },
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
  assets.set('/', asset(readFileSync(new URL('index.html', options.root)), 'text/html; charset=utf-8'));
  for (const file of result.outputFiles) {
    const name = basename(file.path);
    if (name === 'ui-script.js') assets.set(options.scriptPath, asset(Buffer.from(file.contents), 'text/javascript; charset=utf-8'));
    else if (name === 'ui-styles.css') assets.set(options.stylePath, asset(Buffer.from(file.contents), 'text/css; charset=utf-8'));
  }
  if (assets.size !== 3) throw new Error(`UI build produced ${[...assets.keys()].join(', ')}`);
  return assets;
}

/** The app's files by path under /app: `/` (index.html), `/assets/app.js`, `/assets/app.css`. */
export function buildWebApp(): Promise<Map<string, WebAsset>> {
  return bundleUi({ root: ROOT, entry: 'src/main.tsx', styles: 'styles.css', scriptPath: '/assets/app.js', stylePath: '/assets/app.css' });
}

if (import.meta.main) {
  const assets = await buildWebApp();
  const dist = new URL('dist/assets/', ROOT);
  mkdirSync(dist, { recursive: true });
  for (const [path, file] of assets) writeFileSync(new URL(`dist${path === '/' ? '/index.html' : path}`, ROOT), file.body);
  console.log(`web app built into ${new URL('dist/', ROOT).pathname}: ${[...assets].map(([path, file]) => `${path} ${file.body.length} B`).join(', ')}`);
}
