import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ApiError,
  batchedLines,
  isOpenAiPath,
  type Logger,
  openAiErrorFromProblem,
  PROBLEM_CONTENT_TYPE,
  problem,
  problemFromError,
  REQUEST_ID_PATTERN,
  requestContext,
} from '@platform/shared-types';
import { matchRoute, type PipelineStage, type Runtime } from './engine/compile.ts';
import { keepAnswerOpen, watchBody } from './engine/edge.ts';
import type { Exchange, GateCheck } from './engine/exchange.ts';
import { requestFraming } from './engine/framing.ts';
import { SECURITY_HEADERS, upstreamRequestHeaders } from './engine/headers.ts';
import type { Metrics } from './engine/metrics.ts';
import { parseTarget } from './engine/paths.ts';
import type { Gate } from './policies/redis-gate.ts';

/**
 * One access-log line: what pino would write for these fields (`JSON.stringify` escapes the client's strings). The
 * request id (REQUEST_ID_PATTERN or a UUID) and the method (a token node's parser accepted) need no escaping.
 */
function accessLine(prefix: string, ex: Exchange, status: number, ms: number): string {
  const user = ex.actor ? `,"userId":${JSON.stringify(ex.actor.userId)}` : '';
  return `${prefix},"requestId":"${ex.requestId}","method":"${ex.method}","route":${JSON.stringify(ex.route)},"path":${JSON.stringify(ex.path)},"status":${status},"ms":${Math.round(ms * 10) / 10}${user},"msg":"request"}\n`;
}

/**
 * The request path of the gateway: request id, target checks (/internal never routed), route match on the
 * config in force when the request arrived (reloads swap it atomically), the pipeline's stages, and
 * problem+json for anything that goes wrong. One access-log line and metrics per request.
 */
export function createGatewayHandler(deps: { logger: Logger; metrics: Metrics; gate: Gate; runtime: () => Runtime }) {
  const { logger, metrics } = deps;
  // the access line has fixed fields that never hold secrets: built by hand in pino's shape, one write per turn
  const accessLog = batchedLines(logger, 'info');

  function send(ex: Exchange, error: unknown): void {
    const { res } = ex;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    let body: ReturnType<typeof problem>;
    let headers: Record<string, string> = {};
    if (error instanceof ApiError) {
      body = problemFromError(error, ex.requestId);
      headers = error.headers ?? {};
    } else {
      logger.error({ err: error }, 'gateway failure');
      body = problem('INTERNAL', 'Unexpected gateway error', ex.requestId);
    }
    // refusals on the OpenAI-compatible routes (401, 429...) in OpenAI's shape, which its SDKs parse (DESIGN 6)
    const openAi = isOpenAiPath(ex.path);
    const contentType = openAi ? 'application/json' : PROBLEM_CONTENT_TYPE;
    res.writeHead(body.status, { ...SECURITY_HEADERS, ...ex.responseHeaders, ...headers, 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(JSON.stringify(openAi ? openAiErrorFromProblem(body) : body));
    ex.answered = true;
  }

  async function runGate(ex: Exchange, stage: Extract<PipelineStage, { kind: 'gate' }>): Promise<void> {
    const { members } = stage;
    let active = members;
    for (const member of members) {
      if (member.when(ex)) continue;
      active = members.filter((m) => m.when(ex)); // a conditional step that does not apply (rare)
      break;
    }
    // only a policy that reads the body has a prepare step: no await (and no microtask turn) for the others
    for (const member of active) if (member.policy.prepare) await member.policy.prepare(ex);
    if (active.length === 1) {
      const only = (active[0] as (typeof active)[number]).policy;
      const checks = only.collect(ex);
      only.apply(ex, await deps.gate.decide(checks), checks, 0);
      return;
    }
    // every member's checks are a range of the one list sent to the gate; each reads its decisions from its offset
    const perMember: GateCheck[][] = [];
    const all: GateCheck[] = [];
    for (const member of active) {
      const checks = member.policy.collect(ex);
      perMember.push(checks);
      for (const check of checks) all.push(check);
    }
    const result = await deps.gate.decide(all);
    let offset = 0;
    for (let index = 0; index < active.length; index++) {
      const checks = perMember[index] as GateCheck[];
      (active[index] as (typeof active)[number]).policy.apply(ex, result, checks, offset);
      offset += checks.length;
    }
  }

  async function runPipeline(ex: Exchange, stages: PipelineStage[]): Promise<void> {
    for (const stage of stages) {
      if (stage.kind === 'gate') await runGate(ex, stage);
      else if (stage.when(ex)) {
        const pending = stage.policy.run(ex);
        if (pending) await pending; // synchronous steps (verify-token, identity-headers) cost no microtask turn
      }
      if (ex.answered) return;
    }
    throw new ApiError('INTERNAL', 'Pipeline ended without an answer');
  }

  function finish(ex: Exchange): void {
    for (const hook of ex.onClose) hook();
    const ms = performance.now() - ex.startedAt;
    const status = ex.res.headersSent ? ex.res.statusCode : 499; // 499: the client left before an answer
    metrics.requests.inc(ex.route, ex.method, String(status));
    metrics.latency.observe(ex.route, ms / 1000);
    // never the query string or headers: they may carry tokens
    if (accessLog) accessLog.write(accessLine(accessLog.prefix(), ex, status, ms));
  }

  /** connections whose framing was refused: what node parsed after that request is never served */
  const refused = new WeakSet<object>();

  /** Ambiguous framing: 400 and close, before any policy or service sees a byte of it (DESIGN section 10). */
  function refuseFraming(ex: Exchange, reason: string): void {
    refused.add(ex.req.socket);
    ex.responseHeaders.connection = 'close';
    send(ex, new ApiError('VALIDATION_FAILED', `Refused request framing: ${reason}`));
  }

  return function handle(req: IncomingMessage, res: ServerResponse): void {
    if (refused.has(req.socket)) return; // pipelined behind a refused request: the connection is closing
    const framing = requestFraming(req.rawHeaders);
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    const ex: Exchange = {
      req,
      res,
      requestId,
      method: req.method ?? 'GET',
      path: '',
      matchPath: '',
      query: '',
      clientIp: req.socket.remoteAddress ?? 'unknown',
      route: 'unmatched',
      startedAt: performance.now(),
      upstreamHeaders: {},
      responseHeaders: { 'x-request-id': requestId },
      onClose: [],
      answered: false,
      bodyFraming: framing.ok ? framing.framing : { kind: 'none' },
    };
    res.once('close', () => finish(ex));
    if (!framing.ok) {
      refuseFraming(ex, framing.reason);
      return;
    }
    if (framing.framing.kind !== 'none') watchBody(req, res, deps.runtime().config.http.bodyIdleTimeoutMs);
    else if (req.socket.timeout) keepAnswerOpen(res); // an idle timer a pipelined request before this one armed
    void requestContext.run({ requestId }, serve, ex);
  };

  /** target checks, route match and the pipeline; anything that fails is answered as a problem */
  async function serve(ex: Exchange): Promise<void> {
    const { req } = ex;
    try {
      const target = parseTarget(req.url ?? '/');
      if (!target.ok) {
        if (target.internal) throw new ApiError('NOT_FOUND', 'Not found');
        throw new ApiError('VALIDATION_FAILED', `Refused request path: ${target.reason}`);
      }
      if (target.internal) throw new ApiError('NOT_FOUND', 'Not found');
      ex.path = target.path;
      ex.matchPath = target.matchPath;
      ex.query = target.query;
      const runtime = deps.runtime();
      if (runtime.config.http.trustProxy) {
        // the proxy in front appends the address it saw: the last entry is the one we can trust
        const forwarded = req.headers['x-forwarded-for'];
        const last = typeof forwarded === 'string' ? forwarded.split(',').pop()?.trim() : undefined;
        if (last) ex.clientIp = last;
      }
      const route = matchRoute(runtime, ex, req.headers.host);
      if (!route) throw new ApiError('NOT_FOUND', `No route for ${ex.method} ${ex.matchPath}`);
      ex.route = route.pipeline;
      ex.upstreamHeaders = upstreamRequestHeaders(req.headers);
      await runPipeline(ex, runtime.pipelines.get(route.pipeline) ?? []);
    } catch (error) {
      send(ex, error);
    }
  }
}
