// `make up`: starts the local stores (those whose URL the user did not configure), then every part as its own
// process on the DESIGN ports (or GATEWAY_PORT, AUTH_PORT, ACCOUNTING_PORT, CHAT_PORT, MONITORING_PORT), each
// with its own private ops listener (9464-9468, or GATEWAY_OPS_PORT ... MONITORING_OPS_PORT; OPS_PORT=0 puts
// every one on a free port), with prefixed output. Ctrl-C (or SIGTERM, SIGHUP) stops every child, and the stores it started.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_OPS_PORTS as SERVICE_OPS_PORTS } from '../shared-types/src/ops.ts';
import { readDevStoreUrls, resolveStoreUrls, STORE_URL_NAMES } from '../shared-types/src/testing/dev-stores.ts';
import { launchPart, type PartName, ROOT, type RunningPart } from './platform.ts';

const servicesScript = join(ROOT, 'scripts', 'services.sh');
const DEFAULT_PORTS: Record<PartName, number> = { auth: 3000, accounting: 3001, chat: 3002, monitoring: 3003, gateway: 8080 };
// the parts' own defaults (gateway/src/config.ts, shared-types/src/ops.ts): one ops port per part, never shared
const DEFAULT_OPS_PORTS: Record<PartName, number> = { ...SERVICE_OPS_PORTS, gateway: 9464 };
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

function fail(message: string): never {
  process.stderr.write(`make up: ${message}\n`);
  process.exit(2);
}

/** A port variable's value (0 allowed only where `allowZero`: a free port), or undefined when unset. */
function portVariable(env: NodeJS.ProcessEnv, variable: string, allowZero = false): number | undefined {
  const value = env[variable];
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  const min = allowZero ? 0 : 1;
  if (!Number.isInteger(port) || port < min || port > 65535) fail(`${variable}=${value} is not a port (${min}-65535)`);
  return port;
}

/** `<PART>_PORT` from the environment (a fixed port: the parts must know each other's), else the DESIGN port. */
function partPorts(env: NodeJS.ProcessEnv): Record<PartName, number> {
  const ports = { ...DEFAULT_PORTS };
  for (const name of Object.keys(ports) as PartName[]) ports[name] = portVariable(env, `${name.toUpperCase()}_PORT`) ?? ports[name];
  return ports;
}

/**
 * Each part's ops port: `<PART>_OPS_PORT`, else a free one when OPS_PORT=0, else the part's default. One
 * OPS_PORT for all five processes could only clash, so any other OPS_PORT is refused with what to set instead.
 */
function partOpsPorts(env: NodeJS.ProcessEnv, publicPorts: Record<PartName, number>): Record<PartName, number> {
  const shared = portVariable(env, 'OPS_PORT', true);
  if (shared !== undefined && shared !== 0)
    fail(`OPS_PORT=${shared} would give all five parts one ops port; set GATEWAY_OPS_PORT, AUTH_OPS_PORT, ... per part, or OPS_PORT=0 for free ports`);
  const ports = { ...DEFAULT_OPS_PORTS };
  for (const name of Object.keys(ports) as PartName[])
    ports[name] = portVariable(env, `${name.toUpperCase()}_OPS_PORT`, true) ?? (shared === 0 ? 0 : ports[name]);
  const taken = new Map<number, string>(Object.entries(publicPorts).map(([name, port]) => [port, `${name.toUpperCase()}_PORT`]));
  for (const [name, port] of Object.entries(ports) as [PartName, number][]) {
    if (port === 0) continue;
    const other = taken.get(port);
    if (other) fail(`${name.toUpperCase()}_OPS_PORT=${port} is also ${other}: every listener needs its own port`);
    taken.set(port, `${name.toUpperCase()}_OPS_PORT`);
  }
  return ports;
}

/** The local stores that answer now (`services.sh status`). */
function storesUp(): Set<string> {
  const lines = execFileSync('bash', [servicesScript, 'status'], { encoding: 'utf8' }).trim().split('\n');
  return new Set(lines.filter(Boolean).map((line) => line.split(' ')[0] as string));
}

const ports = partPorts(process.env);
const opsPorts = partOpsPorts(process.env, ports);
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
  const own: Record<string, string> = { PORT: String(ports[name]), HOST: env.HOST ?? '127.0.0.1', OPS_PORT: String(opsPorts[name]) };
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

// where Prometheus scrapes each part, once every one listens (the free ones are known only then)
void Promise.all(parts.map((part) => part.opsUrl)).then((urls) =>
  process.stdout.write(`metrics (ops listeners): ${parts.map((part, i) => `${part.name} ${urls[i]}/metrics`).join(', ')}\n`),
);

async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  await Promise.all(parts.map((part) => part.stop()));
  if (startedHere.length > 0) execFileSync('bash', [servicesScript, 'stop', ...startedHere], { stdio: 'inherit' });
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(0));
