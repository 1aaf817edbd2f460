import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestAuth, storeUrls, type TestAuth } from '@platform/shared-types/testing';
import { configSchema } from '../../src/config.ts';
import { type RunningGateway, start } from '../../src/main.ts';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
}

/** A stand-in upstream (our own HTTP server, not a mock): records what arrives, echoes it, and lets a test take over a path. */
export interface Upstream {
  url: string;
  seen: Seen[];
  server: Server;
  handle(path: string, handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const seen: Seen[] = [];
  const handlers = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/ready') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
      return;
    }
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    const custom = handlers.get(path);
    if (custom) return custom(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'x-upstream': 'echo' });
      res.end(
        JSON.stringify({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    server,
    handle: (path, handler) => handlers.set(path, handler),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TestGateway {
  gateway: RunningGateway;
  url: string;
  auth: TestAuth;
  configFile: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts the real gateway on port 0 with a routing file (written to a temp dir) and every service URL pointing at `upstreamUrl`. */
export async function startGateway(options: {
  upstreamUrl: string;
  yaml?: string;
  redisUrl?: string;
  env?: Record<string, string>;
  auth?: TestAuth;
}): Promise<TestGateway> {
  const auth = options.auth ?? createTestAuth();
  const dir = mkdtempSync(join(tmpdir(), 'gateway-test-'));
  const configFile = join(dir, 'gateway.config.yml');
  if (options.yaml) writeFileSync(configFile, options.yaml);
  const gateway = await start(
    configSchema.parse({
      ...auth.secrets,
      ...options.env,
      NODE_ENV: 'test',
      PORT: '0',
      OPS_PORT: '0',
      REDIS_URL: options.redisUrl ?? storeUrls().REDIS_URL,
      AUTH_URL: options.upstreamUrl,
      ACCOUNTING_URL: options.upstreamUrl,
      CHAT_URL: options.upstreamUrl,
      MONITORING_URL: options.upstreamUrl,
      ...(options.yaml ? { GATEWAY_CONFIG: configFile } : {}),
    }),
  );
  return {
    gateway,
    url: gateway.url,
    auth,
    configFile,
    dir,
    async stop() {
      await gateway.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A unique rate-limit key prefix per run, so runs never share counters. */
export const runPrefix = () => `rltest:${randomBytes(4).toString('hex')}:`;

/** Sends a request target exactly as given (fetch would normalise dot segments). */
export function rawRequest(
  base: string,
  target: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: target, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check` until it returns true (bounded). */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export { PrivateRedis } from '@platform/shared-types/testing';
