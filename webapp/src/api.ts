// Talks to the public gateway paths on the same origin with the signed-in user's access token; both UIs (the web app
// and the dashboard) use it. The session (tokens and user) lives in sessionStorage under the UI's own key: a reload
// stays signed in, closing the tab signs out.
// An expired access token is renewed once, silently, with the refresh token; concurrent callers share one renewal.

export interface User {
  id: string;
  username: string;
  email: string;
  role: 'admin' | 'supervisor' | 'enduser';
}
export interface Session {
  accessToken: string;
  refreshToken: string;
  user: User;
}
interface Problem {
  status: number;
  code: string;
  detail: string;
  errors?: Array<{ path: string; message: string }>;
}

/** each UI keeps its own session (the web app's default; the dashboard calls keepSessionUnder first) */
let storageKey = 'webapp.session';

export class ApiProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly errors: Array<{ path: string; message: string }>;
  constructor(problem: Problem) {
    super(problem.detail);
    this.status = problem.status;
    this.code = problem.code;
    this.errors = problem.errors ?? [];
  }
}

export async function problemOf(response: Response): Promise<ApiProblem> {
  try {
    const body = (await response.json()) as Partial<Problem>;
    return new ApiProblem({ status: response.status, code: body.code ?? 'INTERNAL', detail: body.detail ?? response.statusText, errors: body.errors });
  } catch {
    return new ApiProblem({ status: response.status, code: 'INTERNAL', detail: response.statusText || 'Request failed' });
  }
}

/** A message a person can act on, with the field errors of a validation problem. */
export function describe(error: unknown): string {
  if (error instanceof ApiProblem) {
    const fields = error.errors.map((e) => `${e.path.replace(/^body\./, '')}: ${e.message}`).join('; ');
    return fields ? `${error.message} (${fields})` : error.message;
  }
  if (error instanceof TypeError) return 'The platform cannot be reached.';
  return error instanceof Error ? error.message : String(error);
}

let session: Session | null = load();

/** Keeps the session under another sessionStorage key (the dashboard's), and loads what is stored there. */
export function keepSessionUnder(key: string): void {
  storageKey = key;
  session = load();
}
const listeners = new Set<(session: Session | null) => void>();

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(storageKey);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function currentSession(): Session | null {
  return session;
}

export function setSession(next: Session | null): void {
  session = next;
  if (next) sessionStorage.setItem(storageKey, JSON.stringify(next));
  else sessionStorage.removeItem(storageKey);
  for (const listener of listeners) listener(next);
}

export function onSessionChange(listener: (session: Session | null) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Unauthenticated JSON call (sign-up, login, verify, reset). */
export async function publicCall<T>(path: string, body: unknown): Promise<T> {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await problemOf(response);
  return (response.status === 204 ? undefined : await response.json().catch(() => undefined)) as T;
}

let renewal: Promise<boolean> | null = null;

/** Swaps the refresh token for a new pair; one renewal at a time, whoever asks. */
function renew(): Promise<boolean> {
  renewal ??= (async () => {
    const current = session;
    if (!current) return false;
    const response = await fetch('/api/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: current.refreshToken }),
    }).catch(() => null);
    if (!response?.ok) return false;
    const body = (await response.json()) as Partial<Session>;
    if (!body.accessToken || session !== current) return false;
    setSession({ accessToken: body.accessToken, refreshToken: body.refreshToken ?? current.refreshToken, user: body.user ?? current.user });
    return true;
  })().finally(() => {
    renewal = null;
  });
  return renewal;
}

/** Authorized fetch: an expired token is renewed once and the request repeated; a dead session signs out. */
export async function authorizedFetch(path: string, init: RequestInit = {}, retry = true): Promise<Response> {
  const current = session;
  if (!current) throw new ApiProblem({ status: 401, code: 'UNAUTHENTICATED', detail: 'Sign in first' });
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${current.accessToken}`);
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401 && retry) {
    const problem = await problemOf(response.clone());
    if (problem.code === 'TOKEN_EXPIRED' && (await renew())) return authorizedFetch(path, init, false);
    if (session === current) setSession(null);
  }
  return response;
}

export async function api<T>(path: string, options: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await authorizedFetch(path, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (!response.ok) throw await problemOf(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** Ends the session on the server (refresh token family and access token) and here. */
export async function logout(): Promise<void> {
  const current = session;
  setSession(null);
  if (!current) return;
  await fetch('/api/auth/logout', {
    method: 'POST',
    headers: { authorization: `Bearer ${current.accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken: current.refreshToken }),
  }).catch(() => undefined);
}

/** Reads a text/event-stream response event by event (EventSource cannot send Authorization). */
export async function readSse(response: Response, onEvent: (event: string, data: string) => void, onComment?: (text: string) => void): Promise<void> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          onComment?.(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const content = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = content;
        else if (field === 'data') data.push(content);
      }
      if (data.length > 0) onEvent(event, data.join('\n'));
      end = buffer.indexOf('\n\n');
    }
  }
}
