import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { actorFromClaims, createLogger, isRevokedBefore, revocationKeys, revokedBeforeMs, verifyAccessToken } from '@platform/shared-types';
import { createTestAuth, storeUrls, uniqueDbName } from '@platform/shared-types/testing';
import type { Redis } from 'ioredis';
import { buildServices } from '../src/app.ts';
import { type Config, configSchema } from '../src/config.ts';
import { createContext } from '../src/context.ts';
import { start } from '../src/main.ts';

export type Service = Awaited<ReturnType<typeof start>>;

/** Test config: fresh database, low bcrypt cost, own mail folder, stream and Redis key prefix. */
export function testConfig(overrides: Record<string, string> = {}) {
  const auth = createTestAuth();
  const urls = storeUrls();
  const unique = uniqueDbName('auth');
  const mailDir = mkdtempSync(join(tmpdir(), 'auth-mail-'));
  const config: Config = configSchema.parse({
    ...auth.secrets,
    NODE_ENV: 'test',
    PORT: '0',
    MONGO_URL: urls.MONGO_URL,
    MONGO_DB: unique,
    REDIS_URL: urls.REDIS_URL,
    BCRYPT_COST: '4',
    MAIL_DIR: mailDir,
    USER_EVENTS_STREAM: `events:users:${unique}`,
    REDIS_KEY_PREFIX: `${unique}:`,
    ...overrides,
  });
  return { auth, config, mailDir };
}

export async function startTestService(overrides: Record<string, string> = {}) {
  const { auth, config, mailDir } = testConfig(overrides);
  const service = await start(config);
  const url = (path: string) => `${service.url}${path}`;
  const redis: Redis = service.stores.redis;

  async function call(method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    return fetch(url(path), { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  }

  /** What the gateway would send for this access token: signed identity headers plus the bearer token. */
  function asUser(accessToken: string): Record<string, string> {
    const actor = actorFromClaims(verifyAccessToken(auth.accessKeyring, accessToken));
    return { ...auth.identityHeaders(actor), authorization: `Bearer ${accessToken}` };
  }

  /** The gateway's revocation rule (DESIGN section 5), read from the same Redis keys. */
  async function gatewayRefuses(accessToken: string): Promise<boolean> {
    const claims = verifyAccessToken(auth.accessKeyring, accessToken);
    const [jti, before] = await redis.mget(revocationKeys.jti(claims.jti), revocationKeys.before(claims.sub));
    return jti !== null || isRevokedBefore(claims, revokedBeforeMs(before));
  }

  function mails(): Array<{ to: string; subject: string; text: string; meta: { kind: string; token: string }; sentAt: string }> {
    return readdirSync(mailDir)
      .filter((name) => name.endsWith('.json'))
      .map((name) => JSON.parse(readFileSync(join(mailDir, name), 'utf8')))
      .sort((a, b) => String(a.sentAt).localeCompare(String(b.sentAt)));
  }

  /** Waits (bounded poll) until `count` mails of `kind` went to `to`; returns the latest token. */
  async function mailToken(to: string, kind: 'verify-email' | 'reset-password', count = 1): Promise<string> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const found = mails().filter((mail) => mail.to === to && mail.meta.kind === kind);
      if (found.length >= count) return (found.at(-1) as { meta: { token: string } }).meta.token;
      if (Date.now() > deadline) throw new Error(`no ${kind} mail for ${to}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  let counter = 0;
  /** A fresh unique identity for one test. */
  function newIdentity(prefix = 'user') {
    counter += 1;
    const name = `${prefix}${counter}_${Math.random().toString(36).slice(2, 8)}`;
    return { username: name, email: `${name}@example.test`, password: `correct horse ${name} battery` };
  }

  async function signupVerified(identity = newIdentity()) {
    const signup = await call('POST', '/api/auth/signup', { body: identity });
    if (signup.status !== 201) throw new Error(`signup ${signup.status}: ${await signup.text()}`);
    const token = await mailToken(identity.email, 'verify-email');
    const verify = await call('POST', '/api/auth/verify-email', { body: { token } });
    if (verify.status !== 200) throw new Error(`verify ${verify.status}: ${await verify.text()}`);
    const { user } = (await signup.json()) as { user: { id: string } };
    return { ...identity, id: user.id };
  }

  interface Session {
    accessToken: string;
    refreshToken: string;
    expiresIn: number;
    user: { id: string; role: string; username: string; email: string };
  }
  async function login(identity: { email: string; password: string }): Promise<Session> {
    const response = await call('POST', '/api/auth/login', { body: { email: identity.email, password: identity.password } });
    if (response.status !== 200) throw new Error(`login ${response.status}: ${await response.text()}`);
    return (await response.json()) as Session;
  }

  /** Stream entries of this run's event stream, parsed. */
  async function events(): Promise<Array<{ eventId: string; type: string; user: { id: string; role: string; status: string }; previousRole?: string }>> {
    const entries = await redis.xrange(config.USER_EVENTS_STREAM, '-', '+');
    return entries.map(([, fields]) => JSON.parse(fields[1] as string));
  }

  const refresh = (refreshToken: string) => call('POST', '/api/auth/refresh', { body: { refreshToken } });
  const { sessions } = buildServices(createContext(config, createLogger('auth-test', { level: 'silent' }), service.stores));
  /** One run of the periodic sweep. */
  const sweep = () => sessions.sweepExpired();

  async function stop() {
    await redis.del(config.USER_EVENTS_STREAM);
    await service.stores.mongo.dropDatabase();
    await service.stop();
    rmSync(mailDir, { recursive: true, force: true });
  }

  return {
    auth,
    config,
    service,
    redis,
    url,
    call,
    refresh,
    sweep,
    asUser,
    gatewayRefuses,
    mails,
    mailToken,
    newIdentity,
    signupVerified,
    login,
    events,
    stop,
  };
}

export type TestService = Awaited<ReturnType<typeof startTestService>>;
