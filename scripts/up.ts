// `make up`: starts the local stores (unless URLs are configured), then every part as its own process on
// the DESIGN ports, with prefixed output. Ctrl-C (or SIGTERM) stops every child, and the stores it started.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const servicesScript = join(root, 'scripts', 'services.sh');

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
  ...readEnvFile(join(root, '.data', 'secrets.env')),
  ...readEnvFile(join(root, '.data', 'services.env')),
  NODE_ENV: process.env.NODE_ENV ?? 'development',
  MAIL_DIR: process.env.MAIL_DIR ?? join(root, '.data', 'mail'),
  FILES_DIR: process.env.FILES_DIR ?? join(root, '.data', 'files'),
};

const parts: Array<{ name: string; port: number }> = [
  { name: 'auth', port: 3000 },
  { name: 'accounting', port: 3001 },
  { name: 'chat', port: 3002 },
  { name: 'monitoring', port: 3003 },
  { name: 'gateway', port: 8080 },
];
const colors = [36, 33, 35, 32, 34];
const children: ChildProcess[] = [];
let stopping = false;

function prefixLines(name: string, color: number, stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) {
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) out.write(`\x1b[${color}m${name.padEnd(10)}\x1b[0m ${line}\n`);
  });
}

parts.forEach((part, index) => {
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: join(root, part.name),
    env: { ...env, PORT: String(env[`${part.name.toUpperCase()}_PORT`] ?? part.port), HOST: env.HOST ?? '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const color = colors[index % colors.length] as number;
  prefixLines(part.name, color, child.stdout as NodeJS.ReadableStream, process.stdout);
  prefixLines(part.name, color, child.stderr as NodeJS.ReadableStream, process.stderr);
  child.on('exit', (code, signal) => {
    process.stdout.write(`${part.name} exited (${signal ?? code})\n`);
    if (!stopping) void stop(1);
  });
  children.push(child);
});
process.stdout.write('platform starting: gateway on http://127.0.0.1:8080 (Ctrl-C stops everything)\n');

async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  const exits = children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((resolve) => c.once('exit', resolve)));
  for (const child of children) child.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const child of children) child.kill('SIGKILL');
  }, 8_000);
  await Promise.all(exits);
  clearTimeout(timer);
  if (!storesWereUp) execFileSync('bash', [servicesScript, 'stop'], { stdio: 'inherit' });
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
