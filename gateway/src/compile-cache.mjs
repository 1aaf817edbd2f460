// Preloaded by `npm start` (`node --import=./src/compile-cache.mjs src/main.ts`) before any TypeScript file:
// Node's compile cache then keeps the type-stripped source of every module, so a warm start never loads the
// type stripper (about 17-20 MB of RSS for the life of the process). Plain JS on purpose: a .ts preload would
// load the stripper itself. The cache lives in os.tmpdir()/node-compile-cache (NODE_COMPILE_CACHE overrides),
// is keyed by file content and Node version, and a cache that cannot be written is skipped silently.
import { enableCompileCache } from 'node:module';

enableCompileCache();
