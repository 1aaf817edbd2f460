import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { ApiError, type Logger } from '@platform/shared-types';
import { z } from 'zod';
import type { Exchange, StepPolicy } from '../engine/exchange.ts';
import { clientResponseHeaders, headersFromRaw, SECURITY_HEADERS } from '../engine/headers.ts';
import { dispatchUpstream, type ResponseSink, type RetryMode, type ServiceRuntime, sendUpstream } from '../engine/services.ts';
import { parseSize } from './body.ts';

export const proxyAction = z
  .object({
    serviceEndpoint: z.string().min(1),
    /** largest request body this route forwards (e.g. 100kb, 10mb) */
    bodyLimit: z
      .union([z.string(), z.number()])
      .default('1mb')
      .pipe(
        z.transform((v, ctx) => {
          try {
            return parseSize(v);
          } catch {
            ctx.issues.push({ code: 'custom', message: `not a size: ${v}`, input: v });
            return z.NEVER;
          }
        }),
      ),
    /** time allowed until the upstream's response headers (overrides the service endpoint's) */
    headersTimeoutMs: z.coerce.number().int().min(1).optional(),
    /** long-lived answers (event streams, relays, downloads, model runs) use the service's second pool */
    pool: z.enum(['ordinary', 'long-lived']).default('ordinary'),
  })
  .strict();
export type ProxyAction = z.infer<typeof proxyAction>;

class BodyTooLarge extends Error {}

/** Counts bytes on the way through and fails the upload once it passes the limit. */
function limitBody(limit: number): Transform {
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > limit) callback(new BodyTooLarge(`Body larger than ${limit} bytes`));
      else callback(null, chunk);
    },
  });
}

/**
 * The body to forward and its framing, set by the gateway itself whatever the method (DESIGN section 10):
 * node's client adds no framing to a body piped into a GET/HEAD/DELETE/OPTIONS, so the service would read
 * those bytes as the next request on the kept-alive socket. A read body goes with its length, a streamed one
 * with the length the client declared (node's parser delivered exactly that many bytes) or chunked; no body,
 * no framing headers.
 */
function forwardedBody(ex: Exchange, bodyLimit: number): Buffer | Transform | undefined {
  const { req, upstreamHeaders: headers } = ex;
  const framing = ex.bodyFraming;
  delete headers['content-length'];
  delete headers['transfer-encoding'];
  if (framing.kind === 'length' && framing.length > bodyLimit) throw new ApiError('PAYLOAD_TOO_LARGE', `Body larger than ${bodyLimit} bytes`);
  if (ex.bufferedBody !== undefined) {
    if (ex.bufferedBody.length > bodyLimit) throw new ApiError('PAYLOAD_TOO_LARGE', `Body larger than ${bodyLimit} bytes`);
    if (framing.kind === 'none' && ex.bufferedBody.length === 0) return undefined;
    headers['content-length'] = String(ex.bufferedBody.length);
    return ex.bufferedBody;
  }
  if (framing.kind === 'none') return undefined;
  if (framing.kind === 'length') headers['content-length'] = String(framing.length);
  else headers['transfer-encoding'] = 'chunked';
  const body = req.pipe(limitBody(bodyLimit));
  req.once('error', (error) => body.destroy(error));
  return body;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a failed request may go once to another instance: never a long-lived answer (a stream) nor a body
 * already streamed out; a buffered body (or none) when the connection was refused, as nothing was sent;
 * a GET/HEAD/OPTIONS without a body also when its kept-alive connection broke before any answer.
 */
function retryMode(method: string, body: Buffer | Transform | undefined, pool: ProxyAction['pool']): RetryMode {
  if (pool === 'long-lived' || body instanceof Transform) return 'none';
  return body === undefined && IDEMPOTENT.has(method) ? 'idempotent' : 'refused';
}

function errorCode(error: unknown): string {
  const e = error as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code ?? 'UNKNOWN';
}

/** Upstream trouble as the client should see it: cannot connect 503, no answer in time 504, anything else 502. */
export function upstreamProblem(service: string, error: unknown): { error: ApiError; kind: string } {
  const code = errorCode(error);
  if (code === 'UPSTREAM_HEADERS_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
    return { kind: 'timeout', error: new ApiError('UPSTREAM_TIMEOUT', `${service} did not answer in time`) };
  }
  if (
    [
      'ECONNREFUSED',
      'UPSTREAM_CONNECT_TIMEOUT',
      'UND_ERR_CONNECT_TIMEOUT',
      'ENOTFOUND',
      'EHOSTUNREACH',
      'EAI_AGAIN',
      'UND_ERR_CLOSED',
      'UND_ERR_DESTROYED',
    ].includes(code)
  ) {
    return { kind: 'connect', error: new ApiError('UPSTREAM_UNAVAILABLE', `${service} is unavailable`) };
  }
  return { kind: 'protocol', error: new ApiError('UPSTREAM_UNAVAILABLE', `${service} failed to answer`, { status: 502 }) };
}

/**
 * Streams the request to the service and its response back, both ways without buffering (event streams
 * arrive event by event). A client that leaves aborts the upstream request, which the service sees as a
 * closed connection.
 */
export function proxyPolicy(
  action: ProxyAction,
  deps: { service: ServiceRuntime; logger: Logger; onUpstreamError?: (service: string, kind: string, instance: string) => void },
): StepPolicy {
  const { service } = deps;
  const headersTimeoutMs = action.headersTimeoutMs ?? service.config.headersTimeoutMs;
  const failed = (error: unknown, instance: string): ApiError => {
    if (error instanceof BodyTooLarge || (error as { cause?: unknown }).cause instanceof BodyTooLarge) {
      return new ApiError('PAYLOAD_TOO_LARGE', `Body larger than ${action.bodyLimit} bytes`);
    }
    const mapped = upstreamProblem(service.name, error);
    deps.onUpstreamError?.(service.name, mapped.kind, instance);
    deps.logger.warn({ service: service.name, code: errorCode(error), err: { message: (error as Error).message } }, 'upstream failed');
    return mapped.error;
  };
  const broken = (instance: string) => {
    deps.onUpstreamError?.(service.name, 'stream', instance);
    deps.logger.warn({ service: service.name }, 'response stream broke');
  };

  /** ordinary answers to a body read whole or none: undici's dispatch writes straight into the client response */
  async function dispatched(ex: Exchange, body: Buffer | undefined): Promise<void> {
    const { res } = ex;
    let left = false;
    let resume: (() => void) | undefined;
    const sink: ResponseSink = {
      head(status, rawHeaders, resumeBody) {
        writeClientHead(ex, status, headersFromRaw(rawHeaders, true));
        resume = resumeBody;
        return true;
      },
      data(chunk) {
        if (res.write(chunk)) return true;
        // backpressure: undici holds the body until the client drains (most answers never get here)
        if (resume) res.once('drain', resume);
        return false;
      },
      end: () => res.end(),
      broken() {
        if (!left) broken(call.instance());
        res.destroy();
      },
    };
    const call = dispatchUpstream(
      service,
      { path: ex.path + ex.query, method: ex.method, headers: ex.upstreamHeaders, body, headersTimeoutMs, retry: retryMode(ex.method, body, 'ordinary') },
      sink,
    );
    // run by the engine when the response closes (no listener of our own): a client that left aborts the call
    ex.onClose.push(() => {
      if (res.writableFinished) return;
      left = true;
      call.abort();
    });
    try {
      await call.done;
    } catch (error) {
      if (left) {
        ex.answered = true; // the client left; nobody to answer
        return;
      }
      throw failed(error, call.instance());
    } finally {
      if (resume) res.off('drain', resume);
    }
  }

  function forward(ex: Exchange): Promise<void> | undefined {
    if (ex.res.closed || ex.req.socket.destroyed) {
      ex.answered = true; // the client left while the policies ran
      return;
    }
    const body = forwardedBody(ex, action.bodyLimit);
    if (action.pool === 'ordinary' && !(body instanceof Transform)) return dispatched(ex, body);
    return streamed(ex, body);
  }

  return {
    kind: 'step',
    run(ex) {
      const turn = inTurn(ex);
      return turn ? turn.then(() => forward(ex)) : forward(ex);
    },
  };

  /** streamed uploads and long-lived answers on node:http (its body pipes keep our own framing) */
  async function streamed(ex: Exchange, body: Buffer | Transform | undefined): Promise<void> {
    const { res } = ex;
    const call = sendUpstream(service, {
      path: ex.path + ex.query,
      method: ex.method,
      headers: ex.upstreamHeaders,
      body,
      headersTimeoutMs,
      pool: action.pool,
      retry: retryMode(ex.method, body, action.pool),
    });
    let left = false;
    const abortOnLeave = () => {
      if (res.writableFinished) return;
      left = true;
      call.abort();
    };
    res.once('close', abortOnLeave);
    let upstream: IncomingMessage;
    try {
      upstream = await call.response;
    } catch (error) {
      res.off('close', abortOnLeave);
      if (left && !(error instanceof BodyTooLarge || (error as { cause?: unknown }).cause instanceof BodyTooLarge)) {
        ex.answered = true; // the client left; nobody to answer
        return;
      }
      throw failed(error, call.instance());
    }
    writeClientHead(ex, upstream.statusCode ?? 502, clientResponseHeaders(upstream.headers));
    await relay(upstream, res, () => {
      if (!left) broken(call.instance());
    });
    res.off('close', abortOnLeave);
  }
}

/**
 * Pipelined requests go upstream one after the other, as the client sent them (RFC 9112 9.3.2 allows parallel
 * work only for safe methods): node gives a request's response its socket once the answers before it on the
 * connection are done, so a request without one waits for that (or for the client to leave). Undefined: its turn.
 */
function inTurn(ex: Exchange): Promise<void> | undefined {
  const { res } = ex;
  const { socket } = ex.req;
  if (res.socket || socket.destroyed) return undefined;
  return new Promise((resolve) => {
    const go = () => {
      res.off('socket', go);
      socket.off('close', go);
      resolve();
    };
    res.once('socket', go);
    socket.once('close', go);
  });
}

/** The client response head: the upstream's headers (hop-by-hop ones already dropped), the route's, the security defaults. */
function writeClientHead(ex: Exchange, status: number, headers: Record<string, string | string[]>): void {
  const { res } = ex;
  for (const name in ex.responseHeaders) headers[name] = ex.responseHeaders[name] as string;
  for (const name in SECURITY_HEADERS) if (headers[name] === undefined) headers[name] = SECURITY_HEADERS[name] as string;
  res.writeHead(status, headers);
  ex.answered = true;
  // event streams: send the headers now, the first event may take a while
  const type = headers['content-type'];
  if (typeof type === 'string' && type.startsWith('text/event-stream')) res.flushHeaders();
}

/**
 * Copies the upstream body to the client chunk by chunk with backpressure (lighter than stream.pipeline
 * for the many small responses). A client that leaves destroys the upstream body, which closes the upstream
 * connection; an upstream body that ends early (error, or closed before its end) breaks the client response.
 */
function relay(body: IncomingMessage, res: ServerResponse, onBroken: () => void): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      body.off('data', onData);
      body.off('error', onError);
      body.off('close', onError);
      res.off('drain', onDrain);
      res.off('close', onClose);
      body.on('error', () => undefined); // late socket errors of a body nobody reads any more
      resolve();
    };
    const onData = (chunk: Buffer) => {
      if (!res.write(chunk)) body.pause();
    };
    const onDrain = () => body.resume();
    const onClose = () => {
      if (!res.writableFinished) body.destroy();
      finish();
    };
    const onError = () => {
      if (done) return;
      onBroken();
      res.destroy();
      finish();
    };
    body.on('data', onData);
    body.once('end', () => {
      res.end();
      finish();
    });
    body.once('error', onError);
    body.once('close', onError); // 'close' before 'end': the upstream connection broke mid-body
    res.on('drain', onDrain);
    res.once('close', onClose);
  });
}
