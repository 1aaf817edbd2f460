import { randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { ServiceName } from '../claims.ts';
import { actorFromClaims } from '../claims.ts';
import { ApiError, PROBLEM_CONTENT_TYPE, problem, problemFromError } from '../errors.ts';
import { IDENTITY_CLAIM_HEADERS, REQUEST_ID_HEADER, REQUEST_ID_PATTERN, SERVICE_TOKEN_HEADER } from '../headers.ts';
import { bindingPath, verifyIdentityHeaders } from '../identity-signature.ts';
import { type Logger, requestContext } from '../logger.ts';
import { isOpenAiPath, openAiErrorFromProblem } from '../openai-errors.ts';
import { methodLabel, serviceHttpMetrics } from '../ops.ts';
import { bearerToken, type Keyring, verifyAccessToken, verifyServiceToken } from '../tokens.ts';
import './types.ts';

/** Sets req.requestId (a well-formed client id is kept) and runs the rest of the request in its log context. */
export function requestId(): RequestHandler {
  return (req, res, next) => {
    const given = req.headers[REQUEST_ID_HEADER];
    const id = typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    req.requestId = id;
    res.setHeader('X-Request-Id', id);
    requestContext.run({ requestId: id }, next);
  };
}

/**
 * One log line per request, with method, path (no query: it may carry tokens), status and duration, and for a
 * service-to-service call the verified calling service (`caller`), so an /internal line says who made it.
 */
export function accessLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info(
        { requestId: req.requestId, method: req.method, path: req.path, caller: req.caller, status: res.statusCode, ms: Math.round(ms * 10) / 10 },
        'request',
      );
    });
    next();
  };
}

/** The route pattern that answered (`/api/chat/sessions/:id`), never the raw path: label values stay bounded. */
export function routeLabel(req: express.Request): string {
  const pattern = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof pattern === 'string') return `${req.baseUrl}${pattern}`;
  return req.baseUrl ? `${req.baseUrl}/*` : 'unmatched';
}

/** `http_requests_total` and `http_request_duration_seconds` per route pattern, method and status (ops listener). */
export function httpMetrics(): RequestHandler {
  const metrics = serviceHttpMetrics();
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.once('close', () => {
      const route = routeLabel(req);
      const method = methodLabel(req.method);
      // 499: the client left before an answer (as the gateway counts it)
      metrics.requests.inc({ route, method, status: res.headersSent ? res.statusCode : 499 });
      metrics.duration.observe({ route, method }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}

/**
 * DESIGN section 3: identity headers count only with a valid, fresh gateway signature for this method, path
 * and service. A request that
 * claims any identity header without one is refused outright (401), never treated as anonymous.
 */
export function gatewayIdentity(internalSecret: string, service: ServiceName): RequestHandler {
  return (req, _res, next) => {
    const claimsIdentity = IDENTITY_CLAIM_HEADERS.some((name) => req.headers[name] !== undefined);
    if (!claimsIdentity) return next();
    // bound to the request this service received: a header set captured elsewhere does not verify here
    req.actor = verifyIdentityHeaders(internalSecret, req.headers, { method: req.method, path: bindingPath(req.originalUrl), service });
    next();
  };
}

/**
 * DESIGN section 4, for /internal routes: a valid service token for this audience is required; the user's
 * bearer token, when sent, is verified fully (identity headers are ignored here). A bad user token does not
 * fail the call by itself: routes that need the user report it (finalize works after the token expired).
 */
export function serviceAuth(options: { audience: ServiceName; internalKeyring: Keyring; accessKeyring: Keyring }): RequestHandler {
  return (req, _res, next) => {
    req.actor = undefined;
    const serviceToken = req.headers[SERVICE_TOKEN_HEADER];
    if (typeof serviceToken !== 'string') throw new ApiError('UNAUTHENTICATED', 'Service token required');
    const claims = verifyServiceToken(options.internalKeyring, serviceToken, options.audience);
    req.caller = claims.iss;
    const token = bearerToken(req.headers.authorization);
    if (token) {
      try {
        req.actor = actorFromClaims(verifyAccessToken(options.accessKeyring, token));
        req.userToken = token;
      } catch (error) {
        req.authError = error instanceof ApiError ? error : new ApiError('UNAUTHENTICATED');
      }
    }
    next();
  };
}

function hasBody(req: express.Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** JSON bodies only (multipart passes through to its route); size-limited; anything else with a body is 415. */
export function jsonBody(limit: string | number): RequestHandler {
  const parse = express.json({ limit, strict: true, type: ['application/json', 'application/*+json'] });
  return (req, res, next) => {
    if (!hasBody(req)) return next();
    const type = req.headers['content-type'] ?? '';
    if (/^multipart\/form-data/i.test(type)) return next();
    if (!/^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i.test(type)) {
      throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'Send a JSON body with Content-Type: application/json');
    }
    parse(req, res, next);
  };
}

export function notFound(): RequestHandler {
  return (req) => {
    throw new ApiError('NOT_FOUND', `No route for ${req.method} ${req.path}`);
  };
}

const STORE_ERROR_NAMES = new Set([
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
  'MaxRetriesPerRequestError',
  'KnexTimeoutError',
]);
const STORE_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P03', '08006', '08001', '08003']);
/** Redis replies that say it cannot take the command now (out of memory, a read-only replica, still loading...) */
const REDIS_REFUSALS = /^(OOM|READONLY|LOADING|MASTERDOWN|MISCONF|BUSY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS) /;

/** A store (MongoDB, PostgreSQL, Redis) that cannot be reached is a 503 for the client, not a 500. */
export function isStoreUnavailable(error: unknown): boolean {
  let current = error as { name?: string; code?: unknown; message?: string; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 4; depth += 1) {
    if (current.name && STORE_ERROR_NAMES.has(current.name)) return true;
    if (current.name === 'ReplyError' && typeof current.message === 'string' && REDIS_REFUSALS.test(current.message)) return true;
    if (typeof current.code === 'string' && STORE_ERROR_CODES.has(current.code)) return true;
    if (typeof current.message === 'string' && /buffering timed out|Connection is closed|Stream isn't writeable|connection terminated/i.test(current.message))
      return true;
    current = current.cause as typeof current;
  }
  return false;
}

// PostgreSQL: value too long, NUL byte, untranslatable character
const REJECTED_VALUE_CODES = new Set(['22001', '22021', '22P05']);

export function isStoreRejectedValue(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && REJECTED_VALUE_CODES.has(code);
}

/** Maps every error to problem+json. Unknown errors are logged and answered as INTERNAL, never with a stack. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) {
      logger.warn({ err: { message: error?.message } }, 'error after response started');
      res.destroy();
      return;
    }
    const requestId = req.requestId ?? randomUUID();
    let body: ReturnType<typeof problem>;
    if (error instanceof ApiError) {
      body = problemFromError(error, requestId);
      for (const [name, value] of Object.entries(error.headers ?? {})) res.setHeader(name, value);
    } else if (error?.type === 'entity.too.large') {
      body = problem('PAYLOAD_TOO_LARGE', 'Request body is too large', requestId);
    } else if (error?.type === 'entity.parse.failed' || error?.type === 'charset.unsupported' || error?.type === 'encoding.unsupported') {
      body = problem('VALIDATION_FAILED', 'Request body is not valid JSON', requestId);
    } else if (isStoreRejectedValue(error)) {
      // defence in depth: a value the schema let through but the store refuses is still the client's input
      body = problem('VALIDATION_FAILED', 'A value is too long or contains characters that cannot be stored', requestId);
    } else if (isStoreUnavailable(error)) {
      logger.warn({ err: { name: error?.name, message: error?.message } }, 'store unavailable');
      body = problem('UPSTREAM_UNAVAILABLE', 'A backing store is unavailable; try again shortly', requestId, { status: 503 });
      res.setHeader('Retry-After', '2');
    } else if (error instanceof URIError) {
      body = problem('VALIDATION_FAILED', 'Malformed URL', requestId);
    } else {
      logger.error({ err: error }, 'unhandled error');
      body = problem('INTERNAL', 'Something went wrong', requestId);
    }
    if (body.status === 401 && !res.getHeader('www-authenticate')) res.setHeader('WWW-Authenticate', 'Bearer');
    // the OpenAI-compatible routes answer in OpenAI's error shape, which its SDKs parse (DESIGN 6)
    if (isOpenAiPath(req.path))
      res
        .status(body.status)
        .type('application/json')
        .send(JSON.stringify(openAiErrorFromProblem(body)));
    else res.status(body.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
    void next;
  };
}
