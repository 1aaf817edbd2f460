import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type Actor,
  internalRepliesQuery,
  internalRepliesResponse,
  type Keyring,
  type PublicUser,
  relationshipCheckQuery,
  SERVICE_TOKEN_HEADER,
  type StoredReply,
  verifyServiceToken,
} from '@platform/shared-types';
import { listen, type RunningServer } from '@platform/shared-types/express';
import { dropPostgresDatabase } from '@platform/shared-types/stores/postgres';
import { connectRedis } from '@platform/shared-types/stores/redis';
import { createTestAuth, storeUrls, type TestAuth, testActor, uniqueDbName } from '@platform/shared-types/testing';
import { expect } from 'chai';
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

/**
 * A small real HTTP server speaking chat's GET /internal/replies contract (internal-api.ts): service token for
 * audience `chat` from accounting only, the [from, to) window and paging by `after`, answers parsed with the
 * contract's schema. Tests declare the replies chat "stored".
 */
export async function startChatStub(keyring: () => Keyring, pageSize?: number) {
  const replies: StoredReply[] = [];
  const calls: Array<{ query: Record<string, string>; caller: string }> = [];
  const server: RunningServer = await listen((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' });
      res.end(JSON.stringify(body));
    };
    let caller: string;
    try {
      caller = verifyServiceToken(keyring(), String(req.headers[SERVICE_TOKEN_HEADER] ?? ''), 'chat').iss;
    } catch {
      return send(401, { code: 'UNAUTHENTICATED', detail: 'service token required', status: 401 });
    }
    if (caller !== 'accounting') return send(403, { code: 'FORBIDDEN', detail: 'accounting only', status: 403 });
    if (req.method !== 'GET' || url.pathname !== '/internal/replies') return send(404, { code: 'NOT_FOUND', detail: 'no route', status: 404 });
    const parsed = internalRepliesQuery.safeParse(Object.fromEntries(url.searchParams));
    if (!parsed.success) return send(400, { code: 'VALIDATION_FAILED', detail: 'bad query', status: 400 });
    calls.push({ query: Object.fromEntries(url.searchParams), caller });
    const { from, to, after, limit } = parsed.data;
    const inWindow = replies
      .filter((reply) => reply.createdAt >= new Date(from).toISOString() && reply.createdAt < new Date(to).toISOString())
      .filter((reply) => after === undefined || reply.messageId > after)
      .sort((a, b) => a.messageId.localeCompare(b.messageId));
    const page = inWindow.slice(0, Math.min(limit, pageSize ?? limit));
    const more = inWindow.length > page.length;
    send(200, internalRepliesResponse.parse({ replies: page, next: more ? page.at(-1)?.messageId : undefined }));
  }, 0);
  return { url: server.url, replies, calls, close: () => server.close(100) };
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
  // chat "stored" only the replies a test declares (reconciliation pairs them with reservations); small pages
  const chatStub = await startChatStub(() => auth.internalKeyring, 2);
  const config = configSchema.parse({
    ...auth.secrets,
    NODE_ENV: 'test',
    PORT: '0',
    PG_URL: urls.PG_URL,
    PG_DB: dbName,
    REDIS_URL: urls.REDIS_URL,
    MONITORING_URL: monitoring.url,
    AUTH_URL: authStub.url,
    CHAT_URL: chatStub.url,
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
    chatStub,
    api,
    async stop() {
      await service.stop();
      await monitoring.close();
      await authStub.close();
      await chatStub.close();
      const cleanup = await connectRedis(urls.REDIS_URL);
      await cleanup.del(stream);
      await cleanup.quit();
      await dropPostgresDatabase(urls.PG_URL, dbName);
    },
  };
}

export type Harness = Awaited<ReturnType<typeof startAccounting>>;

/** Starts accounting before the enclosing describe's tests and stops it after them; read the harness inside tests. */
export function accountingPerSuite(overrides: Partial<Record<keyof Config, string>> = {}): () => Harness {
  let harness: Harness | undefined;
  before(async () => {
    harness = await startAccounting(overrides);
  });
  after(async () => {
    await harness?.stop();
  });
  return () => {
    if (!harness) throw new Error('accounting is not started yet (read the harness inside a test or hook)');
    return harness;
  };
}

/** A user accounting knows (from its first request) holding `credits` an admin allocated. */
export async function fundedUser(h: Harness, credits: number): Promise<Actor> {
  const user = testActor('enduser');
  expect((await h.api.as(user, 'GET', '/api/credits/balance')).status).to.equal(200);
  const allocated = await h.api.as(testActor('admin'), 'POST', '/api/credits/allocate', { userId: user.userId, credits });
  expect(allocated.status, await allocated.clone().text()).to.equal(201);
  return user;
}

type Answer = Record<string, unknown> & { chargedCredits: number; shortfallCredits: number; status: string };

/** Calls one /internal/streaming-sessions route as chat does (with the user's bearer token when given). */
export async function reservationCall(h: Harness, path: 'initialize' | 'renew' | 'finalize' | 'abort', body: Record<string, unknown>, user?: Actor) {
  return h.api.json<Answer>(await h.api.internal('POST', `/internal/streaming-sessions/${path}`, body, { token: user ? h.auth.token(user) : undefined }));
}

/** One metered stream as chat runs it: reserve with the user's token, then finalize or abort with the usage. */
export async function meteredStream(
  h: Harness,
  user: Actor,
  stream: { modelId?: string; inputTokens?: number; maxOutputTokens?: number; settle?: 'finalize' | 'abort'; outputTokens: number; usedInputTokens?: number },
): Promise<{ reservationId: string; settled: Answer }> {
  const reservationId = randomUUID();
  const inputTokens = stream.inputTokens ?? 100;
  const body = { reservationId, sessionId: 's', modelId: stream.modelId ?? 'local-dev', inputTokens, maxOutputTokens: stream.maxOutputTokens ?? 500 };
  const reserved = await reservationCall(h, 'initialize', body, user);
  expect(reserved.status, JSON.stringify(reserved.body)).to.equal(200);
  const usage = { reservationId, inputTokens: stream.usedInputTokens ?? inputTokens, outputTokens: stream.outputTokens };
  const settled = await reservationCall(h, stream.settle ?? 'finalize', usage);
  expect(settled.status, JSON.stringify(settled.body)).to.equal(200);
  return { reservationId, settled: settled.body };
}

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
