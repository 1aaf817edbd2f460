/**
 * Small REAL HTTP servers standing in for auth, accounting and chat in tests: they speak the /internal
 * contracts of shared-types/internal-api.ts (and verify the service token like the real callee would). Every
 * answer is parsed with the contract's schema before it is sent, and they answer what the real services do
 * (accounting reports zeros for a user it has no account for; chat's `interrupted` names the interrupter by
 * username and id), so a stand-in cannot drift from the service it replaces.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Actor,
  internalActiveResponse,
  internalBalancesResponse,
  internalUsersResponse,
  type PublicUser,
  parseIdList,
  SERVICE_TOKEN_HEADER,
  type ServiceName,
  verifyServiceToken,
} from '@platform/shared-types';
import type { TestAuth } from '@platform/shared-types/testing';
import { z } from 'zod';
import { sseFrame } from '../../src/features/observe/observe-service.ts';

/**
 * The terminal events chat sends (chat/src/features/stream/stream-service.ts emits them; DESIGN section 5):
 * the stand-in refuses to emit anything else under these names.
 */
const usage = z.object({ inputTokens: z.number().int().min(0), outputTokens: z.number().int().min(0) });
export const chatTerminalEvents: Record<string, z.ZodType> = {
  done: z.object({ messageId: z.string(), usage, credits: z.number().int().min(0) }),
  // a supervisor's interrupt names them by username and id; a client that went away is `by: 'client'`
  interrupted: z.union([
    z.object({ messageId: z.string(), by: z.string(), byUserId: z.string(), reason: z.string(), usage, credits: z.number().int().min(0) }),
    z.object({ messageId: z.string(), by: z.literal('client'), reason: z.string(), usage, credits: z.number().int().min(0) }),
  ]),
  error: z.object({ code: z.string(), detail: z.string(), usage: usage.optional(), credits: z.number().int().min(0).optional() }),
};

export interface FakeServer {
  url: string;
  /** requests received, by path (for asserting what monitoring asked) */
  calls: string[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => unknown;

export function sendJson(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(JSON.stringify(body));
}

export function sendProblem(res: ServerResponse, status: number, code: string, detail: string): void {
  sendJson(res, status, { type: 'about:blank', title: code, status, code, detail, requestId: 'fake' }, 'application/problem+json');
}

async function serve(auth: TestAuth, audience: ServiceName, handler: Handler): Promise<FakeServer & { server: Server }> {
  const calls: string[] = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    calls.push(url.pathname);
    try {
      const token = req.headers[SERVICE_TOKEN_HEADER];
      verifyServiceToken(auth.internalKeyring, typeof token === 'string' ? token : '', audience);
    } catch {
      return sendProblem(res, 401, 'UNAUTHENTICATED', 'service token required');
    }
    await handler(req, res, url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function publicUserOf(actor: Actor, overrides: Partial<PublicUser> = {}): PublicUser {
  return {
    id: actor.userId,
    username: actor.username,
    email: actor.email,
    role: actor.role,
    status: 'active',
    emailVerified: true,
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

/** auth: GET /internal/users?ids= */
export async function startFakeAuth(auth: TestAuth) {
  const users = new Map<string, PublicUser>();
  const fake = await serve(auth, 'auth', (_req, res, url) => {
    if (url.pathname !== '/internal/users') return sendProblem(res, 404, 'NOT_FOUND', 'no route');
    const ids = parseIdList(url.searchParams.get('ids') ?? '');
    sendJson(res, 200, internalUsersResponse.parse({ users: ids.flatMap((id) => users.get(id) ?? []) }));
  });
  return {
    ...fake,
    users,
    add(actor: Actor, overrides: Partial<PublicUser> = {}) {
      users.set(actor.userId, publicUserOf(actor, overrides));
    },
  };
}

/** accounting: GET /internal/credits/balances?userIds= and /internal/streaming-sessions/active?userIds= */
export async function startFakeAccounting(auth: TestAuth) {
  const balances = new Map<string, { available: number; reserved: number }>();
  const active = new Map<string, Array<{ reservationId: string; sessionId: string; modelId: string; reservedCredits: number; startedAt: string }>>();
  const fake = await serve(auth, 'accounting', (_req, res, url) => {
    const ids = parseIdList(url.searchParams.get('userIds') ?? '');
    if (url.pathname === '/internal/credits/balances') {
      // like accounting: a user without an account has zero available and zero reserved
      return sendJson(
        res,
        200,
        internalBalancesResponse.parse({ balances: ids.map((userId) => ({ userId, ...(balances.get(userId) ?? { available: 0, reserved: 0 }) })) }),
      );
    }
    if (url.pathname === '/internal/streaming-sessions/active') {
      return sendJson(res, 200, internalActiveResponse.parse({ sessions: ids.flatMap((userId) => (active.get(userId) ?? []).map((s) => ({ userId, ...s }))) }));
    }
    sendProblem(res, 404, 'NOT_FOUND', 'no route');
  });
  return { ...fake, balances, active };
}

interface ObservedSession {
  ownerId: string;
  /** events so far (replayed to each new observer) */
  events: Array<{ event: string; data: string }>;
  observers: Set<ServerResponse>;
  ended: boolean;
}

/**
 * chat: GET /internal/sessions/:id/observe?userId= (SSE). Replays the session's events and follows live;
 * 404 when the session is not the named user's. Emits 'observer-closed' when an observer connection closes.
 */
export async function startFakeChat(auth: TestAuth) {
  const sessions = new Map<string, ObservedSession>();
  const events = new EventEmitter();
  let openObservers = 0;
  const fake = await serve(auth, 'chat', (req, res, url) => {
    const match = /^\/internal\/sessions\/([^/]+)\/observe$/.exec(url.pathname);
    if (!match) return sendProblem(res, 404, 'NOT_FOUND', 'no route');
    const session = sessions.get(decodeURIComponent(match[1] as string));
    if (!session || session.ownerId !== url.searchParams.get('userId')) return sendProblem(res, 404, 'NOT_FOUND', 'no such session');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    for (const event of session.events) res.write(sseFrame(event));
    if (session.ended) return res.end();
    openObservers++;
    session.observers.add(res);
    events.emit('observer-opened');
    res.on('close', () => {
      openObservers--;
      session.observers.delete(res);
      events.emit('observer-closed', { authorization: req.headers.authorization });
    });
  });
  return {
    ...fake,
    sessions,
    events,
    get openObservers() {
      return openObservers;
    },
    open(sessionId: string, ownerId: string) {
      sessions.set(sessionId, { ownerId, events: [], observers: new Set(), ended: false });
    },
    /** appends an event; a terminal one (done, interrupted, error) ends the stream like chat does */
    emit(sessionId: string, event: string, data: unknown) {
      const session = sessions.get(sessionId);
      if (!session) throw new Error(`no session ${sessionId}`);
      chatTerminalEvents[event]?.parse(data);
      const frame = { event, data: JSON.stringify(data) };
      session.events.push(frame);
      for (const observer of session.observers) observer.write(sseFrame(frame));
      if (['done', 'interrupted', 'error'].includes(event)) {
        session.ended = true;
        for (const observer of session.observers) observer.end();
      }
    },
  };
}

export type FakeAuth = Awaited<ReturnType<typeof startFakeAuth>>;
export type FakeAccounting = Awaited<ReturnType<typeof startFakeAccounting>>;
export type FakeChat = Awaited<ReturnType<typeof startFakeChat>>;

export { waitFor } from './wait.ts';
