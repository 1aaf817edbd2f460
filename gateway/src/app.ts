import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Logger, PROBLEM_CONTENT_TYPE, problem, REQUEST_ID_PATTERN } from '@platform/shared-types';
import { Agent, request } from 'undici';
import { type Config, routeTable } from './config.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'proxy-authorization',
  'proxy-authenticate',
]);

/**
 * Skeleton gateway (foundation): aggregates /health and forwards each DESIGN prefix to its service.
 * Token verification, identity headers, rate limits and config-driven routing come with the gateway issue.
 */
export function buildGateway(deps: { config: Config; logger: Logger }) {
  const { config, logger } = deps;
  const routes = routeTable(config);
  const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000 });
  const services = { auth: config.AUTH_URL, accounting: config.ACCOUNTING_URL, chat: config.CHAT_URL, monitoring: config.MONITORING_URL };

  function sendProblem(res: ServerResponse, requestId: string, code: Parameters<typeof problem>[0], detail: string) {
    const body = problem(code, detail, requestId);
    res.writeHead(body.status, { 'content-type': PROBLEM_CONTENT_TYPE, 'x-request-id': requestId });
    res.end(JSON.stringify(body));
  }

  async function health(res: ServerResponse) {
    const entries = await Promise.all(
      Object.entries(services).map(async ([name, url]) => {
        try {
          const response = await request(`${url}/ready`, { dispatcher: agent, headersTimeout: 2_000, bodyTimeout: 2_000 });
          await response.body.dump();
          return [name, response.statusCode === 200 ? 'ready' : 'unavailable'] as const;
        } catch {
          return [name, 'unreachable'] as const;
        }
      }),
    );
    const parts = Object.fromEntries([['gateway', 'ready'], ...entries]);
    const ok = Object.values(parts).every((state) => state === 'ready');
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: ok ? 'ok' : 'degraded', parts }));
  }

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/health') return health(res);
    const route = routes.find((r) => path === r.prefix || path.startsWith(`${r.prefix}/`));
    if (!route) return sendProblem(res, requestId, 'NOT_FOUND', `No route for ${req.method} ${path}`);
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      if (/^x-(user|identity|service)-/i.test(name)) continue;
      headers[name] = value;
    }
    headers['x-request-id'] = requestId;
    try {
      const upstream = await request(`${route.target}${req.url}`, {
        method: req.method as 'GET',
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
        dispatcher: agent,
      });
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(upstream.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      res.writeHead(upstream.statusCode, out);
      for await (const chunk of upstream.body) res.write(chunk);
      res.end();
    } catch (error) {
      logger.warn({ requestId, err: { message: (error as Error).message }, service: route.service }, 'upstream failed');
      if (!res.headersSent) sendProblem(res, requestId, 'UPSTREAM_UNAVAILABLE', `${route.service} is unavailable`);
      else res.destroy();
    }
  };
  return { handler, close: () => agent.close() };
}
