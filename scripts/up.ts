// `make up`: starts the local stores (those whose URL the user did not configure), then every part as its own
// process on the DESIGN ports (or GATEWAY_PORT, AUTH_PORT, ACCOUNTING_PORT, CHAT_PORT, MONITORING_PORT), with
// prefixed output. Ctrl-C (or SIGTERM, SIGHUP) stops every child, and the stores it started.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readDevStoreUrls, resolveStoreUrls, STORE_URL_NAMES } from '../shared-types/src/testing/dev-stores.ts';
import { launchPart, type PartName, ROOT, type RunningPart } from './platform.ts';

const servicesScript = join(ROOT, 'scripts', 'services.sh');
const DEFAULT_PORTS: Record<PartName, number> = { auth: 3000, accounting: 3001, chat: 3002, monitoring: 3003, gateway: 8080 };
const COLORS: Record<PartName, number> = { auth: 36, accounting: 33, chat: 35, monitoring: 32, gateway: 34 };
// where each part finds the others: derived from the ports unless set
const URL_VARIABLES: Partial<Record<PartName, string>> = { auth: 'AUTH_URL', accounting: 'ACCOUNTING_URL', chat: 'CHAT_URL', monitoring: 'MONITORING_URL' };
// a part's own database name: e.g. ACCOUNTING_PG_DB becomes accounting's PG_DB (useful on a shared server)
const DATABASE_VARIABLES: Partial<Record<PartName, [string, string]>> = {
  auth: ['AUTH_MONGO_DB', 'MONGO_DB'],
  chat: ['CHAT_MONGO_DB', 'MONGO_DB'],
  accounting: ['ACCOUNTING_PG_DB', 'PG_DB'],
  monitoring: ['MONITORING_PG_DB', 'PG_DB'],
};
const STORE_OF_URL = { PG_URL: 'postgres', REDIS_URL: 'redis', MONGO_URL: 'mongo' } as const;

function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1] as string] = match[2] as string;
  }
  return env;
}

/** `<PART>_PORT` from the environment (a fixed port: the parts must know each other's), else the DESIGN port. */
function partPorts(env: NodeJS.ProcessEnv): Record<PartName, number> {
  const ports = { ...DEFAULT_PORTS };
  for (const name of Object.keys(ports) as PartName[]) {
    const variable = `${name.toUpperCase()}_PORT`;
    const value = env[variable];
    if (value === undefined || value === '') continue;
    const port = Number(value);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      process.stderr.write(`make up: ${variable}=${value} is not a port (1-65535)\n`);
      process.exit(2);
    }
    ports[name] = port;
  }
  return ports;
}

/** The local stores that answer now (`services.sh status`). */
function storesUp(): Set<string> {
  const lines = execFileSync('bash', [servicesScript, 'status'], { encoding: 'utf8' }).trim().split('\n');
  return new Set(lines.filter(Boolean).map((line) => line.split(' ')[0] as string));
}

const ports = partPorts(process.env);
const upBefore = storesUp();
execFileSync('bash', [servicesScript, 'start'], { stdio: 'inherit' });
// read after the start: the URLs of the stores it runs now (a port may have moved)
const devUrls = readDevStoreUrls(ROOT);
const stores = resolveStoreUrls(process.env, devUrls);
if (stores.missing.length > 0) {
  process.stderr.write(`make up: no URL for ${stores.missing.join(', ')}\n`);
  process.exit(1);
}
// ours to stop on Ctrl-C: the dev stores this run started (not the ones already up, not the user's)
const startedHere = STORE_URL_NAMES.filter((name) => devUrls[name] && !upBefore.has(STORE_OF_URL[name])).map((name) => STORE_OF_URL[name]);
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  ...readEnvFile(join(ROOT, '.data', 'secrets.env')),
  ...stores.urls,
  NODE_ENV: process.env.NODE_ENV ?? 'development',
  MAIL_DIR: process.env.MAIL_DIR ?? join(ROOT, '.data', 'mail'),
  PUBLIC_URL: process.env.PUBLIC_URL ?? `http://127.0.0.1:${ports.gateway}`,
};
for (const [name, variable] of Object.entries(URL_VARIABLES) as [PartName, string][])
  env[variable] = process.env[variable] ?? `http://127.0.0.1:${ports[name]}`;

function partEnv(name: PartName): Record<string, string> {
  const own: Record<string, string> = { PORT: String(ports[name]), HOST: env.HOST ?? '127.0.0.1' };
  const database = DATABASE_VARIABLES[name];
  if (database && env[database[0]]) own[database[1]] = env[database[0]] as string;
  return { ...env, ...own };
}

const parts: RunningPart[] = [];
let stopping = false;

for (const name of Object.keys(ports) as PartName[]) {
  const part = launchPart(
    name,
    partEnv(name),
    (from, line, stream) => {
      (stream === 'err' ? process.stderr : process.stdout).write(`\x1b[${COLORS[from]}m${from.padEnd(10)}\x1b[0m ${line}\n`);
    },
    { ownProcessGroup: true },
  );
  part.url.catch(() => {});
  void part.exited.then((code) => {
    process.stdout.write(`${name} exited (${code})\n`);
    if (!stopping) void stop(1);
  });
  parts.push(part);
}
const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
process.stdout.write(
  `platform starting: gateway on ${gatewayUrl}, web app ${gatewayUrl}/app/, dashboard ${gatewayUrl}/monitoring/, dev mail in ${env.MAIL_DIR} (Ctrl-C stops everything)\n`,
);

async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  await Promise.all(parts.map((part) => part.stop()));
  if (startedHere.length > 0) execFileSync('bash', [servicesScript, 'stop', ...startedHere], { stdio: 'inherit' });
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(0));
