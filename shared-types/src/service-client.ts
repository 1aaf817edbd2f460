import type { Agent } from 'undici';
import type { z } from 'zod';
import type { ServiceName } from './claims.ts';
import { ApiError, isErrorCode } from './errors.ts';
import { REQUEST_ID_HEADER, SERVICE_TOKEN_HEADER } from './headers.ts';
import { currentRequestId, type Logger } from './logger.ts';
import { type Keyring, signServiceToken } from './tokens.ts';

type Undici = typeof import('undici');
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
  #agent: Agent | undefined;

  constructor(options: {
    caller: ServiceName;
    internalKeyring: Keyring;
    baseUrls: Partial<Record<ServiceName, string>>;
    connections?: number;
    logger?: Logger;
  }) {
    this.#caller = options.caller;
    this.#logger = options.logger;
    this.#keyring = options.internalKeyring;
    this.#baseUrls = options.baseUrls;
    this.#connections = options.connections ?? 32;
  }

  async call<T = unknown>(callee: ServiceName, path: string, options: ServiceCallOptions<T> = {}): Promise<ServiceResponse<T>> {
    const base = this.#baseUrls[callee];
    if (!base) throw new ApiError('INTERNAL', `No URL configured for ${callee}`);
    const url = new URL(path, base);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = {
      accept: 'application/json',
      [SERVICE_TOKEN_HEADER]: signServiceToken(this.#keyring, this.#caller, callee),
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
    const { Agent, request } = await loadUndici();
    this.#agent ??= new Agent({ connections: this.#connections, keepAliveTimeout: 10_000 });
    let response: Awaited<ReturnType<Undici['request']>>;
    try {
      response = await request(url, {
        method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
        headers,
        body: payload,
        dispatcher: this.#agent,
        headersTimeout: options.timeoutMs ?? 10_000,
        bodyTimeout: options.timeoutMs ?? 10_000,
      });
    } catch (error) {
      throw new ApiError('UPSTREAM_UNAVAILABLE', `${callee} is unavailable`, { cause: error });
    }
    const text = await response.body.text();
    let body: unknown = text;
    if (text && /json/.test(String(response.headers['content-type'] ?? ''))) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new ApiError('UPSTREAM_UNAVAILABLE', `${callee} answered malformed JSON`, { status: 502 });
      }
    }
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return { status: response.statusCode, body: options.schema ? this.#validated(callee, path, options.schema, body) : (body as T) };
    }
    const code = (body as { code?: unknown } | null)?.code;
    const detail = (body as { detail?: unknown } | null)?.detail;
    if (response.statusCode < 500 && isErrorCode(code)) {
      throw new ApiError(code, typeof detail === 'string' ? detail : `${callee} refused the call`, { extensions: { upstream: callee } });
    }
    throw new ApiError('UPSTREAM_UNAVAILABLE', `${callee} answered ${response.statusCode}`, { status: response.statusCode === 503 ? 503 : 502 });
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
    await this.#agent?.close();
  }
}
