// `make up`: starts the local stores (unless URLs are configured), then every part as its own process on
// the DESIGN ports (or GATEWAY_PORT, AUTH_PORT, ACCOUNTING_PORT, CHAT_PORT, MONITORING_PORT), with prefixed
// output. Ctrl-C (or SIGTERM) stops every child, and the stores it started.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchPart, type PartName, ROOT, type RunningPart } from './platform.ts';

const servicesScript = join(ROOT, 'scripts', 'services.sh');
const DEFAULT_PORTS: Record<PartName, number> = { auth: 3000, accounting: 3001, chat: 3002, monitoring: 3003, gateway: 8080 };
const COLORS: Record<PartName, number> = { auth: 36, accounting: 33, chat: 35, monitoring: 32, gateway: 34 };
// where each part finds the others: derived from the ports unless set
const URL_VARIABLES: Partial<Record<PartName, string>> = { auth: 'AUTH_URL', accounting: 'ACCOUNTING_URL', chat: 'CHAT_URL', monitoring: 'MONITORING_URL' };

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

const ports = partPorts(process.env);
const storesWereUp = execFileSync('bash', [servicesScript, 'status'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length === 3;
execFileSync('bash', [servicesScript, 'start'], { stdio: 'inherit' });
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  ...readEnvFile(join(ROOT, '.data', 'secrets.env')),
  ...readEnvFile(join(ROOT, '.data', 'services.env')),
  NODE_ENV: process.env.NODE_ENV ?? 'development',
  MAIL_DIR: process.env.MAIL_DIR ?? join(ROOT, '.data', 'mail'),
  PUBLIC_URL: process.env.PUBLIC_URL ?? `http://127.0.0.1:${ports.gateway}`,
};
for (const [name, variable] of Object.entries(URL_VARIABLES) as [PartName, string][]) env[variable] = process.env[variable] ?? `http://127.0.0.1:${ports[name]}`;

const parts: RunningPart[] = [];
let stopping = false;

for (const name of Object.keys(ports) as PartName[]) {
  const part = launchPart(name, { ...env, PORT: String(ports[name]), HOST: env.HOST ?? '127.0.0.1' }, (from, line, stream) => {
    (stream === 'err' ? process.stderr : process.stdout).write(`\x1b[${COLORS[from]}m${from.padEnd(10)}\x1b[0m ${line}\n`);
  });
  part.url.catch(() => {});
  void part.exited.then((code) => {
    process.stdout.write(`${name} exited (${code})\n`);
    if (!stopping) void stop(1);
  });
  parts.push(part);
}
process.stdout.write(`platform starting: gateway on http://127.0.0.1:${ports.gateway} (Ctrl-C stops everything)\n`);

async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  await Promise.all(parts.map((part) => part.stop()));
  if (!storesWereUp) execFileSync('bash', [servicesScript, 'stop'], { stdio: 'inherit' });
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
