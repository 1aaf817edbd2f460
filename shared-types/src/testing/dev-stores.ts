// Which store URLs a run uses. Two sources, never mixed up (issue 19):
// - PG_URL, REDIS_URL, MONGO_URL in the environment are the user's: honoured, never started, never written;
// - the checkout's own dev stores, which `scripts/services.sh start` records in .data/services.env under
//   other names (DEV_PG_URL, ...). `scripts/env.sh` exports those and copies each into PG_URL (...) when the
//   user set none, so a part run by hand finds them; a PG_URL equal to DEV_PG_URL is therefore that copy.
// No imports beyond node: scripts/up.ts loads this before anything else.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const STORE_URL_NAMES = ['PG_URL', 'REDIS_URL', 'MONGO_URL'] as const;
export type StoreUrlName = (typeof STORE_URL_NAMES)[number];
export type StoreUrls = Record<StoreUrlName, string>;

/** The dev store URLs `services.sh start` recorded (only `DEV_*_URL` lines; an older file's other lines are ignored). */
export function readDevStoreUrls(repoRoot: string): Partial<StoreUrls> {
  const file = join(repoRoot, '.data', 'services.env');
  const urls: Partial<StoreUrls> = {};
  if (!existsSync(file)) return urls;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^DEV_([A-Z]+_URL)=(.+)$/.exec(line.trim());
    const name = match?.[1] as StoreUrlName | undefined;
    if (name && STORE_URL_NAMES.includes(name)) urls[name] = match?.[2] as string;
  }
  return urls;
}

/** The URL the user configured for a store, or undefined when it is unset or only env.sh's copy of the dev URL. */
export function configuredStoreUrl(env: NodeJS.ProcessEnv, name: StoreUrlName): string | undefined {
  const value = env[name];
  if (!value || value === env[`DEV_${name}`]) return undefined;
  return value;
}

/** Per store: the user's URL, else the dev store's as services.sh recorded it last (its port may have moved). */
export function resolveStoreUrls(env: NodeJS.ProcessEnv, devUrls: Partial<StoreUrls>): { urls: Partial<StoreUrls>; missing: StoreUrlName[] } {
  const urls: Partial<StoreUrls> = {};
  const missing: StoreUrlName[] = [];
  for (const name of STORE_URL_NAMES) {
    const url = configuredStoreUrl(env, name) ?? devUrls[name];
    if (url) urls[name] = url;
    else missing.push(name);
  }
  return { urls, missing };
}
