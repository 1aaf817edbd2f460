import type { Agent } from 'undici';
import type { z } from 'zod';
import type { ServiceName } from './claims.ts';
import { ApiError, isErrorCode } from './errors.ts';
import { REQUEST_ID_HEADER, SERVICE_TOKEN_HEADER } from './headers.ts';
import { currentRequestId, type Logger } from './logger.ts';
import { type Keyring, SERVICE_TOKEN_MAX_TTL_SECONDS, signServiceToken } from './tokens.ts';

type Undici = typeof import('undici');
type UndiciResponse = Awaited<ReturnType<Undici['request']>>;
let undici: Promise<Undici> | undefined;
/** undici loads on the first call: a process that never calls another service (the gateway) never pays its memory */
const loadUndici = (): Promise<Undici> => {
  undici ??= import('undici');
  return undici;
};

export interface ServiceCallOptions<T = unknown> {
  /** the answer a 2xx must match; one that does not is UPSTREAM_UNAVAILABLE (logged, never returned) */
  schema?: z.ZodType<T>;
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  /** the user's access token when acting on the user's behalf */
  userToken?: string;
  requestId?: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface ServiceStreamOptions extends Omit<ServiceCallOptions, 'schema' | 'timeoutMs'> {
  /** the content type asked for and required of a 2xx answer, e.g. text/event-stream */
  accept: string;
  /** aborts the request and the stream (the client that wanted it left) */
  signal?: AbortSignal;
  /** how long to wait for the answer's headers (default 10 s); the body has no timeout */
  headersTimeoutMs?: number;
}

export interface ServiceStreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: UndiciResponse['body'];
}

export interface ServiceResponse<T> {
  status: number;
  body: T;
}

/**
 * Calls another service over the private network (DESIGN section 4): forwards the request id and the
 * user's token and adds a fresh audience-bound service token. Non-2xx answers that carry one of our
 * problem codes are rethrown as that ApiError; a service that cannot be reached is UPSTREAM_UNAVAILABLE.
 * Given a schema, a 2xx answer that does not match it is UPSTREAM_UNAVAILABLE too: it is logged, never trusted.
 */
export class ServiceClient {
  readonly #caller: ServiceName;
  readonly #keyring: Keyring;
  readonly #baseUrls: Partial<Record<ServiceName, string>>;
  readonly #connections: number;
  readonly #logger: Logger | undefined;
  readonly #tokenReuseMs: number;
  readonly #clock: () => number;
  /** per callee: the service token sent, and when it was signed */
  readonly #tokens = new Map<ServiceName, { token: string; signedAt: number }>();
  #agent: Agent | undefined;
  /** long-lived answers (stream()) get connections of their own */
  #streamAgent: Agent | undefined;

  constructor(options: {
    caller: ServiceName;
    internalKeyring: Keyring;
    baseUrls: Partial<Record<ServiceName, string>>;
    connections?: number;
    logger?: Logger;
    /**
     * how long one service token per callee is sent again before a fresh one is signed (default 20 s; 0: one per
     * call). The token names no user or request (DESIGN 4: type, iss, aud, exp <= 60 s), so a reused one still has at
     * least 40 s to live; signing one per call was a measurable share of a burst of stream starts
     */
    serviceTokenReuseMs?: number;
    /** the clock reuse is measured with (tests) */
    clock?: () => number;
  }) {
    this.#caller = options.caller;
    this.#tokenReuseMs = Math.min(options.serviceTokenReuseMs ?? 20_000, (SERVICE_TOKEN_MAX_TTL_SECONDS * 1000) / 2);
    this.#clock = options.clock ?? Date.now;
    this.#logger = options.logger;
    this.#keyring = options.internalKeyring;
    this.#baseUrls = options.baseUrls;
    this.#connections = options.connections ?? 32;
  }

  async call<T = unknown>(callee: ServiceName, path: string, options: ServiceCallOptions<T> = {}): Promise<ServiceResponse<T>> {
    const { Agent } = await loadUndici();
    this.#agent ??= new Agent({ connections: this.#connections, keepAliveTimeout: 10_000 });
    const timeoutMs = options.timeoutMs ?? 10_000;
    const response = await this.#send(callee, path, options, {
      accept: 'application/json',
      dispatcher: this.#agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const body = parseAnswer(callee, await response.body.text(), response.headers['content-type']);
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return { status: response.statusCode, body: options.schema ? this.#validated(callee, path, options.schema, body) : (body as T) };
    }
    throw answerError(callee, response.statusCode, body);
  }

  /**
   * Opens a long-lived answer (an event stream, a download) on connections of its own, so it never holds one
   * of the pool call() uses (DESIGN 10). Same headers as call(); a refusal is mapped as call() maps it, and a
   * 2xx of another type than `accept` is UPSTREAM_UNAVAILABLE. The caller consumes or destroys `body`.
   */
  async stream(callee: ServiceName, path: string, options: ServiceStreamOptions): Promise<ServiceStreamResponse> {
    const { Agent } = await loadUndici();
    this.#streamAgent ??= new Agent({ keepAliveTimeout: 10_000 });
    const response = await this.#send(callee, path, options, {
      accept: options.accept,
      dispatcher: this.#streamAgent,
      signal: options.signal,
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      bodyTimeout: 0, // a stream may be quiet for long; the caller ends it
    });
    const type = String(response.headers['content-type'] ?? '');
    if (response.statusCode >= 200 && response.statusCode < 300) {
      if (type.toLowerCase().startsWith(options.accept.toLowerCase())) return { status: response.statusCode, headers: response.headers, body: response.body };
      response.body.on('error', () => undefined).destroy(); // an answer of the wrong kind may never end: drop it
      throw new ApiError('UPSTREAM_UNAVAILABLE', `${callee} answered ${type || 'no content type'} instead of ${options.accept}`, { status: 502 });
    }
    const text = await response.body.text().catch(() => '');
    throw answerError(callee, response.statusCode, parseAnswer(callee, text, type));
  }

  /** Sends the request with the service token, the user's token and the request id; unreachable: UPSTREAM_UNAVAILABLE. */
  async #send(
    callee: ServiceName,
    path: string,
    options: Omit<ServiceCallOptions, 'schema'>,
    transport: { accept: string; dispatcher: Agent; signal?: AbortSignal; headersTimeout: number; bodyTimeout: number },
  ): Promise<UndiciResponse> {
    const base = this.#baseUrls[callee];
    if (!base) throw new ApiError('INTERNAL', `No URL configured for ${callee}`);
    const url = new URL(path, base);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = {
      accept: transport.accept,
      [SERVICE_TOKEN_HEADER]: this.#serviceToken(callee),
      ...options.headers,
    };
    const requestId = options.requestId ?? currentRequestId();
    if (requestId) headers[REQUEST_ID_HEADER] = requestId;
    if (options.userToken) headers.authorization = `Bearer ${options.userToken}`;
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    const { request } = await loadUndici();
    try {
      return await request(url, {
        method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
        headers,
        body: payload,
        dispatcher: transport.dispatcher,
        signal: transport.signal,
        headersTimeout: transport.headersTimeout,
        bodyTimeout: transport.bodyTimeout,
      });
    } catch (error) {
      throw new ApiError('UPSTREAM_UNAVAILABLE', `${callee} is unavailable`, { cause: error });
    }
  }

  /** the callee's service token: the one signed less than `serviceTokenReuseMs` ago, else a fresh one */
  #serviceToken(callee: ServiceName): string {
    const now = this.#clock();
    const kept = this.#tokens.get(callee);
    if (kept && now - kept.signedAt < this.#tokenReuseMs) return kept.token;
    const token = signServiceToken(this.#keyring, this.#caller, callee, SERVICE_TOKEN_MAX_TTL_SECONDS, Math.floor(now / 1000));
    this.#tokens.set(callee, { token, signedAt: now });
    return token;
  }

  #validated<T>(callee: ServiceName, path: string, schema: z.ZodType<T>, body: unknown): T {
    const parsed = schema.safeParse(body);
    if (parsed.success) return parsed.data;
    // where the answer is wrong, never its values (they may be personal data)
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    this.#logger?.warn({ callee, path, issues }, 'a service answered outside its contract');
    throw new ApiError('UPSTREAM_UNAVAILABLE', `${callee} answered an unexpected ${path}`, { status: 502 });
  }

  async close(): Promise<void> {
    await Promise.all([this.#agent?.close(), this.#streamAgent?.close()]);
  }
}

/** A JSON answer parsed, any other answer as its text. */
function parseAnswer(callee: ServiceName, text: string, contentType: string | string[] | undefined): unknown {
  if (!text || !/json/.test(String(contentType ?? ''))) return text;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError('UPSTREAM_UNAVAILABLE', `${callee} answered malformed JSON`, { status: 502 });
  }
}

/** A non-2xx answer: the callee's own problem code for a 4xx that carries one, else UPSTREAM_UNAVAILABLE. */
function answerError(callee: ServiceName, status: number, body: unknown): ApiError {
  const code = (body as { code?: unknown } | null)?.code;
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (status < 500 && isErrorCode(code)) {
    return new ApiError(code, typeof detail === 'string' ? detail : `${callee} refused the call`, { extensions: { upstream: callee } });
  }
  return new ApiError('UPSTREAM_UNAVAILABLE', `${callee} answered ${status}`, { status: status === 503 ? 503 : 502 });
}
