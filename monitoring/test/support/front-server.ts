/**
 * A small same-origin front for the dashboard browser test, standing in for the gateway and the public routes
 * of the other services: it signs users in, proxies monitoring's paths with signed identity headers (as the
 * gateway does), and answers allocate, interrupt, feedback and the admin user routes like the real services.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Actor, actorFromClaims, bearerToken, bindingPath, isStrippedHeader, verifyAccessToken } from '@platform/shared-types';
import type { TestAuth } from '@platform/shared-types/testing';
import { type FakeAccounting, type FakeAuth, type FakeChat, sendJson, sendProblem } from './fake-services.ts';

const MONITORING_PREFIXES = ['/monitoring', '/api/supervised-students', '/api/monitoring', '/api/observe'];

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

export async function startFrontServer(options: {
  auth: TestAuth;
  monitoringUrl: string;
  fakeAuth: FakeAuth;
  accounting: FakeAccounting;
  chat: FakeChat;
  passwords: Map<string, string>;
}) {
  const { auth, fakeAuth, accounting, chat } = options;
  const allocations: Array<{ key: string | undefined; body: Record<string, unknown>; by: string }> = [];
  const interrupts: Array<{ sessionId: string; reason?: unknown; by: string }> = [];
  const feedback: Array<{ sessionId: string; message: unknown; by: string }> = [];
  // chat's admin catalog as chat answers it (models with accounting's prices, chatflows with access lists)
  const catalog = {
    models: [
      {
        id: 'local-dev',
        displayName: 'Local dev',
        provider: 'local',
        upstreamModel: 'local-dev',
        access: { public: true },
        enabled: true,
        configured: true,
        prices: { inputPer1k: 1, outputPer1k: 2 },
      },
    ],
    chatflows: [
      {
        id: 'flow-1',
        modelId: 'chatflow-flow-1',
        name: 'Tutor',
        displayName: 'Tutor',
        available: true,
        isPublic: false,
        allowedUsers: [] as string[],
        allowedRoles: [] as string[],
        prices: { inputPer1k: 2, outputPer1k: 4 },
      },
    ],
  };

  const actorOf = (req: IncomingMessage): Actor | undefined => {
    const token = bearerToken(req.headers.authorization);
    if (!token) return undefined;
    try {
      return actorFromClaims(verifyAccessToken(auth.accessKeyring, token));
    } catch {
      return undefined;
    }
  };

  function proxy(req: IncomingMessage, res: ServerResponse, actor: Actor | undefined): void {
    const headers: Record<string, string | string[] | undefined> = {};
    for (const [name, value] of Object.entries(req.headers)) if (!isStrippedHeader(name) && name !== 'host') headers[name] = value;
    if (actor)
      Object.assign(headers, auth.identityHeaders(actor, undefined, { method: req.method ?? 'GET', path: bindingPath(req.url ?? '/'), service: 'monitoring' }));
    const upstream = request(new URL(req.url ?? '/', options.monitoringUrl), { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://front');
    const path = url.pathname;
    if (MONITORING_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`))) return proxy(req, res, actorOf(req));
    if (req.method === 'POST' && path === '/api/auth/login') {
      const body = await readJson(req);
      const user = [...fakeAuth.users.values()].find((u) => u.email === body.email || u.username === body.username);
      if (!user || options.passwords.get(user.id) !== body.password) return sendProblem(res, 401, 'INVALID_CREDENTIALS', 'Wrong email or password');
      const accessToken = auth.token({ userId: user.id, username: user.username, email: user.email, role: user.role });
      return sendJson(res, 200, { accessToken, refreshToken: randomUUID(), expiresIn: 900, user });
    }
    const actor = actorOf(req);
    if (!actor) return sendProblem(res, 401, 'UNAUTHENTICATED', 'Sign in first');
    if (req.method === 'POST' && path === '/api/auth/logout') {
      await readJson(req);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && path === '/api/credits/allocate') {
      const body = await readJson(req);
      const key = req.headers['idempotency-key'] as string | undefined;
      allocations.push({ key, body, by: actor.userId });
      const userId = String(body.userId);
      const balance = accounting.balances.get(userId) ?? { available: 0, reserved: 0 };
      balance.available += Number(body.credits);
      accounting.balances.set(userId, balance);
      return sendJson(res, 201, { allocation: { id: randomUUID(), userId, credits: body.credits }, newBalance: balance.available });
    }
    const sessionRoute = /^\/api\/sessions\/([^/]+)\/(interrupt|feedback)$/.exec(path);
    if (req.method === 'POST' && sessionRoute) {
      const sessionId = decodeURIComponent(sessionRoute[1] as string);
      const body = await readJson(req);
      if (!chat.sessions.has(sessionId)) return sendProblem(res, 404, 'NOT_FOUND', 'No such session');
      if (sessionRoute[2] === 'interrupt') {
        interrupts.push({ sessionId, reason: body.reason, by: actor.userId });
        // as chat: the interrupter by username and id, a default reason, answered 202 {status: 'interrupting'}
        chat.emit(sessionId, 'interrupted', {
          messageId: randomUUID(),
          by: actor.username,
          byUserId: actor.userId,
          reason: body.reason ?? `Stopped by ${actor.role}`,
          usage: { inputTokens: 12, outputTokens: 5 },
          credits: 1,
        });
        return sendJson(res, 202, { status: 'interrupting' });
      }
      feedback.push({ sessionId, message: body.message, by: actor.userId });
      const messageId = randomUUID();
      const createdAt = new Date().toISOString();
      chat.emit(sessionId, 'feedback', {
        sessionId,
        messageId,
        content: body.message,
        createdAt,
        from: { userId: actor.userId, username: actor.username, role: actor.role },
      });
      return sendJson(res, 201, { messageId, sessionId, createdAt });
    }
    if (req.method === 'GET' && path === '/api/admin/users' && actor.role === 'admin') {
      // as auth: by role, and by a part of the username or email
      const role = url.searchParams.get('role');
      const search = url.searchParams.get('search')?.toLowerCase();
      const users = [...fakeAuth.users.values()].filter(
        (u) => (!role || u.role === role) && (!search || u.username.toLowerCase().includes(search) || u.email.toLowerCase().includes(search)),
      );
      return sendJson(res, 200, { users, total: users.length, page: 1, limit: 20 });
    }
    // the dashboard's charts: accounting's answers for someone without usage or ledger entries yet
    const owner = url.searchParams.get('userId') ?? actor.userId;
    if (req.method === 'GET' && path === '/api/usage/stats') {
      const totals = { requests: 0, inputTokens: 0, outputTokens: 0, credits: 0 };
      return sendJson(res, 200, {
        userId: owner,
        from: new Date(Date.now() - 30 * 86_400_000).toISOString(),
        to: new Date().toISOString(),
        totals,
        byDay: [],
        byModel: [],
      });
    }
    if (req.method === 'GET' && path === '/api/credits/balance')
      return sendJson(res, 200, { userId: owner, ...(accounting.balances.get(owner) ?? { available: 0, reserved: 0 }), allocations: [] });
    if (req.method === 'GET' && path === '/api/credits/transactions')
      return sendJson(res, 200, { userId: owner, page: 1, limit: 100, total: 0, transactions: [] });
    if (req.method === 'GET' && path === '/api/models/prices') {
      // as accounting: the priced models of the catalog
      const prices = catalog.models.flatMap((m) =>
        m.prices ? [{ modelId: m.id, displayName: m.displayName, ...m.prices, updatedBy: null, updatedAt: new Date(0).toISOString() }] : [],
      );
      return sendJson(res, 200, { prices });
    }
    if (req.method === 'GET' && path === '/api/chat/models/catalog' && actor.role === 'admin') return sendJson(res, 200, { models: catalog.models });
    if (req.method === 'GET' && path === '/api/chat/chatflows' && actor.role === 'admin') return sendJson(res, 200, { chatflows: catalog.chatflows });
    const flowRoute = /^\/api\/chat\/chatflows\/([^/]+)$/.exec(path);
    if (req.method === 'PATCH' && flowRoute && actor.role === 'admin') {
      const flow = catalog.chatflows.find((f) => f.id === decodeURIComponent(flowRoute[1] as string));
      if (!flow) return sendProblem(res, 404, 'NOT_FOUND', 'Unknown chatflow');
      Object.assign(flow, await readJson(req));
      return sendJson(res, 200, flow);
    }
    const userRoute = /^\/api\/admin\/users\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && userRoute && actor.role === 'admin') {
      const user = fakeAuth.users.get(decodeURIComponent(userRoute[1] as string));
      return user ? sendJson(res, 200, { user }) : sendProblem(res, 404, 'NOT_FOUND', 'No such user');
    }
    if (req.method === 'PATCH' && userRoute && actor.role === 'admin') {
      const user = fakeAuth.users.get(decodeURIComponent(userRoute[1] as string));
      if (!user) return sendProblem(res, 404, 'NOT_FOUND', 'No such user');
      Object.assign(user, await readJson(req));
      return sendJson(res, 200, { user });
    }
    sendProblem(res, 404, 'NOT_FOUND', `No route for ${req.method} ${path}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    allocations,
    interrupts,
    feedback,
    catalog,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
