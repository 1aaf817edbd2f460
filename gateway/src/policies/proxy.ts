import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { ApiError, type Logger } from '@platform/shared-types';
import { z } from 'zod';
import type { Exchange, StepPolicy } from '../engine/exchange.ts';
import { clientResponseHeaders, SECURITY_HEADERS } from '../engine/headers.ts';
import { type RetryMode, type ServiceRuntime, sendUpstream } from '../engine/services.ts';
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
    return { kind: 'timeout', error: new ApiError('UPSTREAM_UNAVAILABLE', `${service} did not answer in time`, { extensions: { timeout: true } }) };
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
  return {
    kind: 'step',
    async run(ex) {
      const { res } = ex;
      if (res.closed) {
        ex.answered = true; // the client left while the policies ran
        return;
      }
      const body = forwardedBody(ex, action.bodyLimit);
      const call = sendUpstream(service, {
        path: ex.path + ex.query,
        method: ex.method,
        headers: ex.upstreamHeaders,
        body,
        headersTimeoutMs: action.headersTimeoutMs ?? service.config.headersTimeoutMs,
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
        if (error instanceof BodyTooLarge || (error as { cause?: unknown }).cause instanceof BodyTooLarge) {
          throw new ApiError('PAYLOAD_TOO_LARGE', `Body larger than ${action.bodyLimit} bytes`);
        }
        if (left) {
          ex.answered = true; // the client left; nobody to answer
          return;
        }
        const mapped = upstreamProblem(service.name, error);
        deps.onUpstreamError?.(service.name, mapped.kind, call.instance());
        deps.logger.warn({ service: service.name, code: errorCode(error), err: { message: (error as Error).message } }, 'upstream failed');
        throw mapped.error;
      }
      const headers = clientResponseHeaders(upstream.headers);
      for (const name in ex.responseHeaders) headers[name] = ex.responseHeaders[name] as string;
      for (const name in SECURITY_HEADERS) if (headers[name] === undefined) headers[name] = SECURITY_HEADERS[name] as string;
      res.writeHead(upstream.statusCode ?? 502, headers);
      ex.answered = true;
      // event streams: send the headers now, the first event may take a while
      const type = headers['content-type'];
      if (typeof type === 'string' && type.startsWith('text/event-stream')) res.flushHeaders();
      await relay(upstream, res, () => {
        if (!left) {
          deps.onUpstreamError?.(service.name, 'stream', call.instance());
          deps.logger.warn({ service: service.name }, 'response stream broke');
        }
      });
      res.off('close', abortOnLeave);
    },
  };
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
