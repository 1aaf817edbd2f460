// `make up`: starts the local stores (unless URLs are configured), then every part as its own process on
// the DESIGN ports, with prefixed output. Ctrl-C (or SIGTERM) stops every child, and the stores it started.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchPart, type PartName, ROOT, type RunningPart } from './platform.ts';

const servicesScript = join(ROOT, 'scripts', 'services.sh');

function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1] as string] = match[2] as string;
  }
  return env;
}

const storesWereUp = execFileSync('bash', [servicesScript, 'status'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length === 3;
execFileSync('bash', [servicesScript, 'start'], { stdio: 'inherit' });
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  ...readEnvFile(join(ROOT, '.data', 'secrets.env')),
  ...readEnvFile(join(ROOT, '.data', 'services.env')),
  NODE_ENV: process.env.NODE_ENV ?? 'development',
  MAIL_DIR: process.env.MAIL_DIR ?? join(ROOT, '.data', 'mail'),
};

const ports: Record<PartName, number> = { auth: 3000, accounting: 3001, chat: 3002, monitoring: 3003, gateway: 8080 };
const colors: Record<PartName, number> = { auth: 36, accounting: 33, chat: 35, monitoring: 32, gateway: 34 };
const parts: RunningPart[] = [];
let stopping = false;

for (const name of Object.keys(ports) as PartName[]) {
  const part = launchPart(
    name,
    { ...env, PORT: env[`${name.toUpperCase()}_PORT`] ?? String(ports[name]), HOST: env.HOST ?? '127.0.0.1' },
    (from, line, stream) => {
      (stream === 'err' ? process.stderr : process.stdout).write(`\x1b[${colors[from]}m${from.padEnd(10)}\x1b[0m ${line}\n`);
    },
  );
  part.url.catch(() => {});
  void part.exited.then((code) => {
    process.stdout.write(`${name} exited (${code})\n`);
    if (!stopping) void stop(1);
  });
  parts.push(part);
}
process.stdout.write('platform starting: gateway on http://127.0.0.1:8080 (Ctrl-C stops everything)\n');

async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  await Promise.all(parts.map((part) => part.stop()));
  if (!storesWereUp) execFileSync('bash', [servicesScript, 'stop'], { stdio: 'inherit' });
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
