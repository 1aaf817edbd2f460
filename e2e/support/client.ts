// A small client for the public API, as a browser or a script would use it: JSON in and out, bearer
// tokens, and an SSE reader that yields events one by one.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { ROOT } from '../../scripts/platform.ts';
import type { Platform } from './platform.ts';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

export async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${base}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/**
 * Opens an SSE response and yields parsed events until the stream ends or `signal` aborts.
 * `onComment` sees comment lines (e.g. chat's `: ready` once a listener is subscribed).
 */
export async function* sse(
  base: string,
  path: string,
  options: { token?: string; method?: string; body?: unknown; signal?: AbortSignal; onComment?: (comment: string) => void } = {},
): AsyncGenerator<SseEvent> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
  if (!response.ok || !response.body) throw new SseRefused(response.status, await response.text());
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => queue.push(event), onComment: options.onComment });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      while (queue.length > 0) {
        const message = queue.shift() as EventSourceMessage;
        let data: Record<string, unknown> = {};
        try {
          data = JSON.parse(message.data) as Record<string, unknown>;
        } catch {
          data = { raw: message.data };
        }
        yield { event: message.event ?? 'message', data };
      }
    }
  } catch (error) {
    if ((error as Error).name !== 'AbortError') throw error;
  }
}

export class SseRefused extends Error {
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string) {
    super(`SSE refused with ${status}: ${body}`);
    this.status = status;
    this.body = body;
  }
}

let counter = 0;
export function uniqueUser(prefix = 'user'): { username: string; email: string; password: string } {
  counter += 1;
  const tag = `${Date.now().toString(36)}${counter}${Math.floor(Math.random() * 1e4)}`;
  return { username: `${prefix}_${tag}`.toLowerCase(), email: `${prefix}.${tag}@example.test`.toLowerCase(), password: `Correct-Horse-${tag}-Battery` };
}

export interface Session {
  userId: string;
  username: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

/** Creates a verified user with the auth CLI (as `make create-user` does), then logs in through the gateway. */
export async function createUser(platform: Platform, role: 'admin' | 'supervisor' | 'enduser', prefix: string = role): Promise<Session> {
  const user = uniqueUser(prefix);
  execFileSync(process.execPath, ['src/cli/create-user.ts', '--email', user.email, '--username', user.username, '--password', user.password, '--role', role], {
    cwd: join(ROOT, 'auth'),
    env: { ...platform.env, MONGO_DB: platform.env.AUTH_MONGO_DB ?? '' },
    stdio: 'pipe',
  });
  const session = await login(platform, user);
  // the user's first request creates their accounting account just in time (accounting otherwise learns of
  // new users from the events stream, a few milliseconds later: allocating before that is a 404)
  const balance = await api(platform.gatewayUrl, 'GET', '/api/credits/balance', { token: session.accessToken });
  if (balance.status !== 200) throw new Error(`first balance read failed ${balance.status}: ${JSON.stringify(balance.body)}`);
  return session;
}

export async function login(platform: Platform, user: { email: string; password: string; username: string }): Promise<Session> {
  const response = await api<{ accessToken: string; refreshToken: string; user: { id: string } }>(platform.gatewayUrl, 'POST', '/api/auth/login', {
    body: { email: user.email, password: user.password },
  });
  if (response.status !== 200) throw new Error(`login failed ${response.status}: ${JSON.stringify(response.body)}`);
  return { ...user, userId: response.body.user.id, accessToken: response.body.accessToken, refreshToken: response.body.refreshToken };
}

/** Finds the first array in a paged response, whatever its key. */
export function items<T = Record<string, unknown>>(body: unknown): T[] {
  if (Array.isArray(body)) return body as T[];
  for (const value of Object.values((body ?? {}) as Record<string, unknown>)) if (Array.isArray(value)) return value as T[];
  return [];
}
