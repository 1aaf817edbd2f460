import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Actor, type Keyring, type PublicUser, relationshipCheckQuery, SERVICE_TOKEN_HEADER, verifyServiceToken } from '@platform/shared-types';
import { listen, type RunningServer } from '@platform/shared-types/express';
import { connectRedis, dropPostgresDatabase } from '@platform/shared-types/stores';
import { createTestAuth, storeUrls, type TestAuth, uniqueDbName } from '@platform/shared-types/testing';
import { type Config, configSchema } from '../src/config.ts';
import { start } from '../src/main.ts';

/**
 * A small real HTTP server speaking monitoring's /internal/relationships/check contract (internal-api.ts):
 * it demands a service token for audience `monitoring` and answers from the pairs the test declares.
 */
export async function startMonitoringStub(auth: TestAuth) {
  const pairs = new Set<string>();
  const calls: Array<{ supervisorId: string; studentId: string; caller: string }> = [];
  const server: RunningServer = await listen((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' });
      res.end(JSON.stringify(body));
    };
    let caller: string;
    try {
      caller = verifyServiceToken(auth.internalKeyring, String(req.headers[SERVICE_TOKEN_HEADER] ?? ''), 'monitoring').iss;
    } catch {
      return send(401, { code: 'UNAUTHENTICATED', detail: 'service token required', status: 401 });
    }
    if (req.method !== 'GET' || url.pathname !== '/internal/relationships/check') return send(404, { code: 'NOT_FOUND', detail: 'no route', status: 404 });
    const query = relationshipCheckQuery.safeParse(Object.fromEntries(url.searchParams));
    if (!query.success) return send(400, { code: 'VALIDATION_FAILED', detail: 'bad query', status: 400 });
    calls.push({ ...query.data, caller });
    const supervises = pairs.has(`${query.data.supervisorId}:${query.data.studentId}`);
    send(200, supervises ? { supervises, relationshipId: randomUUID(), since: new Date().toISOString() } : { supervises });
  }, 0);
  return {
    url: server.url,
    calls,
    supervise: (supervisor: Actor, student: Actor) => pairs.add(`${supervisor.userId}:${student.userId}`),
    close: () => server.close(100),
  };
}

export type MonitoringStub = Awaited<ReturnType<typeof startMonitoringStub>>;

/** A small real HTTP server speaking auth's GET /internal/users contract (internal-api.ts), service token required. */
export async function startAuthStub(keyring: () => Keyring) {
  const users = new Map<string, PublicUser>();
  const calls: Array<{ ids: string; caller: string }> = [];
  const server: RunningServer = await listen((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' });
      res.end(JSON.stringify(body));
    };
    let caller: string;
    try {
      caller = verifyServiceToken(keyring(), String(req.headers[SERVICE_TOKEN_HEADER] ?? ''), 'auth').iss;
    } catch {
      return send(401, { code: 'UNAUTHENTICATED', detail: 'service token required', status: 401 });
    }
    if (req.method !== 'GET' || url.pathname !== '/internal/users') return send(404, { code: 'NOT_FOUND', detail: 'no route', status: 404 });
    const ids = url.searchParams.get('ids') ?? '';
    calls.push({ ids, caller });
    send(200, { users: ids.split(',').flatMap((id) => (users.has(id) ? [users.get(id)] : [])) });
  }, 0);
  return { url: server.url, users, calls, close: () => server.close(100) };
}

/** The real accounting service on a fresh database, a private events stream, and a monitoring stub. */
export async function startAccounting(overrides: Partial<Record<keyof Config, string>> = {}) {
  const auth = createTestAuth();
  const urls = storeUrls();
  const dbName = uniqueDbName('accounting');
  const stream = overrides.USER_EVENTS_STREAM ?? `test:events:users:${randomUUID()}`;
  const monitoring = await startMonitoringStub(auth);
  // auth knows only the users a test declares (accounting asks it about users it has not heard of)
  const authStub = await startAuthStub(() => auth.internalKeyring);
  const config = configSchema.parse({
    ...auth.secrets,
    NODE_ENV: 'test',
    PORT: '0',
    PG_URL: urls.PG_URL,
    PG_DB: dbName,
    REDIS_URL: urls.REDIS_URL,
    MONITORING_URL: monitoring.url,
    AUTH_URL: authStub.url,
    USER_EVENTS_BLOCK_MS: '200',
    ...overrides,
    USER_EVENTS_STREAM: stream,
  });
  const service = await start(config);
  const { db, redis } = service.stores;

  const json = async <T = Record<string, unknown>>(response: Response) => ({ status: response.status, body: (await response.json()) as T });
  const api = {
    /** a request through the "gateway": signed identity headers for the actor */
    async as(actor: Actor, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      return fetch(`${service.url}${path}`, {
        method,
        headers: { ...auth.identityHeaders(actor), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
    /** a service-to-service call from chat, with the user's bearer token when given */
    async internal(method: string, path: string, body?: unknown, options: { token?: string; from?: 'chat' | 'monitoring' } = {}) {
      return fetch(`${service.url}${path}`, {
        method,
        headers: {
          ...auth.serviceHeaders(options.from ?? 'chat', 'accounting'),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
    json,
  };

  return {
    auth,
    config,
    service,
    db,
    redis,
    stream,
    monitoring,
    authStub,
    api,
    async stop() {
      await service.stop();
      await monitoring.close();
      await authStub.close();
      const cleanup = await connectRedis(urls.REDIS_URL);
      await cleanup.del(stream);
      await cleanup.quit();
      await dropPostgresDatabase(urls.PG_URL, dbName);
    },
  };
}

export type Harness = Awaited<ReturnType<typeof startAccounting>>;

/** Waits (bounded) until `condition` holds. */
export async function eventually<T>(condition: () => Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
