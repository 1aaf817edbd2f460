import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Actor, ServiceName } from '../claims.ts';
import { SERVICE_TOKEN_HEADER } from '../headers.ts';
import { type IdentityBinding, signIdentityHeaders } from '../identity-signature.ts';
import { connectPostgres, dropPostgresDatabase, ensurePostgresDatabase, type Migration, migrateDownAll, migrateLatest, pgUrlFor } from '../stores/postgres.ts';
import { createKeyring, type Keyring, signAccessToken, signServiceToken } from '../tokens.ts';
import { readDevStoreUrls, resolveStoreUrls, type StoreUrls } from './dev-stores.ts';
import { installGatewaySigner, presignIdentityHeaders } from './gateway-signer.ts';

export { installGatewaySigner, presignIdentityHeaders, withGatewaySigner } from './gateway-signer.ts';
export { freePort, PrivateRedis, portOpen } from './private-redis.ts';

/** Fresh random secrets for one test run (never reused, never committed). */
export function testSecrets() {
  const rnd = () => randomBytes(32).toString('hex');
  return { JWT_ACCESS_SECRET: rnd(), JWT_REFRESH_SECRET: rnd(), INTERNAL_SECRET: rnd() };
}

export interface TestAuth {
  secrets: ReturnType<typeof testSecrets>;
  accessKeyring: Keyring;
  refreshKeyring: Keyring;
  internalKeyring: Keyring;
  /** a valid access token for the actor */
  token(actor: Actor, options?: { ttlSeconds?: number }): string;
  /**
   * The identity headers the gateway would inject for the actor. With `binding`, signed for that request; without,
   * presigned: `fetch` signs them for the request it sends (see gateway-signer.ts), other clients must bind.
   */
  identityHeaders(actor: Actor, requestId?: string, binding?: IdentityBinding): Record<string, string>;
  /** a service token from `iss` to `aud` */
  serviceHeaders(iss: ServiceName, aud: ServiceName): Record<string, string>;
}

export function createTestAuth(secrets = testSecrets()): TestAuth {
  const accessKeyring = createKeyring(secrets.JWT_ACCESS_SECRET);
  const refreshKeyring = createKeyring(secrets.JWT_REFRESH_SECRET);
  const internalKeyring = createKeyring(secrets.INTERNAL_SECRET);
  installGatewaySigner(secrets.INTERNAL_SECRET);
  return {
    secrets,
    accessKeyring,
    refreshKeyring,
    internalKeyring,
    token: (actor, options = {}) =>
      signAccessToken(
        accessKeyring,
        { sub: actor.userId, username: actor.username, email: actor.email, role: actor.role },
        { jti: actor.jti, ttlSeconds: options.ttlSeconds },
      ),
    identityHeaders: (actor, requestId = `test-${randomUUID()}`, binding) => {
      if (binding) return signIdentityHeaders(secrets.INTERNAL_SECRET, actor, requestId, binding);
      installGatewaySigner(secrets.INTERNAL_SECRET); // again: a test may have swapped fetch since (nock.restore)
      return presignIdentityHeaders(secrets.INTERNAL_SECRET, actor, requestId);
    },
    serviceHeaders: (iss, aud) => ({ [SERVICE_TOKEN_HEADER]: signServiceToken(internalKeyring, iss, aud) }),
  };
}

/** A random actor of the given role (ids look like Mongo ObjectIds, as auth issues them). */
export function testActor(role: Actor['role'] = 'enduser', overrides: Partial<Actor> = {}): Actor {
  const userId = randomBytes(12).toString('hex');
  const name = `u${userId.slice(-8)}`;
  return { userId, username: name, email: `${name}@example.test`, role, jti: randomUUID(), ...overrides };
}

/** Walks up from `from` to the repository root (the folder with .git or the workspaces package.json). */
export function repoRoot(from = process.cwd()): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'shared-types', 'package.json')) && existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return from;
    dir = parent;
  }
}

/**
 * URLs of the backing stores for tests: the ones the user configured (PG_URL, REDIS_URL, MONGO_URL), else this
 * checkout's dev stores that `scripts/services.sh start` records in .data/services.env (see dev-stores.ts).
 * Throws with a hint when a store has neither.
 */
export function storeUrls(): StoreUrls {
  const { urls, missing } = resolveStoreUrls(process.env, readDevStoreUrls(repoRoot()));
  if (missing.length > 0) throw new Error(`${missing.join(', ')} not set and no dev store recorded: run 'make services' first`);
  return urls as StoreUrls;
}

/** A database name unique to this test run, so parallel runs never share state. */
export function uniqueDbName(prefix: string): string {
  return `${prefix}_t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** Puts a database name into a mongodb:// URL that may carry a query string. */
export function mongoUrlFor(baseUrl: string, dbName: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${dbName}`;
  return url.toString();
}

/** Checks a problem+json response; returns its body. */
export async function expectProblem(response: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const text = await response.text();
  if (response.status !== status) throw new Error(`expected ${status} ${code}, got ${response.status}: ${text}`);
  if (!String(response.headers.get('content-type')).startsWith('application/problem+json'))
    throw new Error(`expected problem+json, got ${response.headers.get('content-type')}`);
  const body = JSON.parse(text) as Record<string, unknown>;
  if (body.code !== code) throw new Error(`expected code ${code}, got ${String(body.code)}: ${text}`);
  if (typeof body.requestId !== 'string' || body.requestId.length === 0) throw new Error('problem lacks requestId');
  return body;
}

/**
 * The checks every service must pass (DESIGN sections 3, 4, 6), as one shared mocha suite.
 * `baseUrl` is read lazily because the service starts in the caller's `before` hook.
 */
export function itBehavesLikeAService(options: { baseUrl: () => string; auth: TestAuth; service: ServiceName; storeChecks: string[] }): void {
  const { auth } = options;
  const url = (path: string) => `${options.baseUrl()}${path}`;

  it('answers /health, and /ready with every store reachable', async () => {
    const health = await fetch(url('/health'));
    if (health.status !== 200) throw new Error(`/health answered ${health.status}`);
    const ready = await fetch(url('/ready'));
    const body = (await ready.json()) as { checks: Record<string, boolean> };
    if (ready.status !== 200) throw new Error(`/ready answered ${ready.status}: ${JSON.stringify(body)}`);
    for (const store of options.storeChecks) if (body.checks[store] !== true) throw new Error(`/ready lacks ${store}`);
  });

  it('answers unknown paths with problem+json 404 carrying the client request id', async () => {
    const body = await expectProblem(await fetch(url('/api/no-such-route'), { headers: { 'x-request-id': 'client-req-0001' } }), 404, 'NOT_FOUND');
    if (body.requestId !== 'client-req-0001') throw new Error('request id not echoed');
  });

  it('refuses forged identity headers without a valid signature (401)', async () => {
    await expectProblem(
      await fetch(url('/api/no-such-route'), { headers: { 'x-user-id': 'u1', 'x-user-role': 'admin', 'x-username': 'root' } }),
      401,
      'UNAUTHENTICATED',
    );
    const tampered = auth.identityHeaders(testActor('enduser'));
    tampered['x-user-role'] = 'admin';
    await expectProblem(await fetch(url('/api/no-such-route'), { headers: tampered }), 401, 'UNAUTHENTICATED');
    const unsigned = auth.identityHeaders(testActor('admin'));
    delete unsigned['x-identity-signature'];
    await expectProblem(await fetch(url('/api/no-such-route'), { headers: unsigned }), 401, 'UNAUTHENTICATED');
  });

  it('accepts correctly signed identity headers', async () => {
    await expectProblem(await fetch(url('/api/no-such-route'), { headers: auth.identityHeaders(testActor('enduser')) }), 404, 'NOT_FOUND');
  });

  it('refuses /internal without a service token for this audience, and ignores identity headers there', async () => {
    await expectProblem(await fetch(url('/internal/anything')), 401, 'UNAUTHENTICATED');
    const other: ServiceName = options.service === 'auth' ? 'chat' : 'auth';
    await expectProblem(await fetch(url('/internal/anything'), { headers: auth.serviceHeaders('gateway', other) }), 401, 'UNAUTHENTICATED');
    await expectProblem(await fetch(url('/internal/anything'), { headers: auth.identityHeaders(testActor('admin')) }), 401, 'UNAUTHENTICATED');
  });

  it('answers a non-JSON body with 415 and a malformed one with 400', async () => {
    const headers = auth.identityHeaders(testActor('enduser'));
    await expectProblem(
      await fetch(url('/api/no-such-route'), { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: 'hi' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    await expectProblem(
      await fetch(url('/api/no-such-route'), { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"a":' }),
      400,
      'VALIDATION_FAILED',
    );
  });

  it('answers an oversized JSON body with 413', async () => {
    const big = JSON.stringify({ blob: 'x'.repeat(2 * 1024 * 1024) });
    const response = await fetch(url('/api/no-such-route'), {
      method: 'POST',
      headers: { ...auth.identityHeaders(testActor('enduser')), 'content-type': 'application/json' },
      body: big,
    });
    await expectProblem(response, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('serves an OpenAPI document of its routes', async () => {
    const response = await fetch(url('/openapi.json'));
    const doc = (await response.json()) as { openapi?: string };
    if (response.status !== 200 || !doc.openapi?.startsWith('3.')) throw new Error('no OpenAPI document');
  });
}

/**
 * Starts the service on fresh databases of its store (`store`: a unique database name, the dev store URLs and
 * test secrets in `env`), runs the shared service checks against it, then stops it and drops what it made.
 * `dropMongo` drops a mongo service's database (through the service's own connection) before it stops.
 */
export function itBehavesLikeAStartedService<S extends { url: string; stop(): Promise<void> }>(options: {
  service: ServiceName;
  store: 'mongo' | 'postgres';
  start: (env: Record<string, string>) => Promise<S>;
  dropMongo?: (service: S) => Promise<unknown>;
}): void {
  const auth = createTestAuth();
  const urls = storeUrls();
  const dbName = uniqueDbName(options.service);
  const storeEnv: Record<string, string> = options.store === 'mongo' ? { MONGO_URL: urls.MONGO_URL, MONGO_DB: dbName } : { PG_URL: urls.PG_URL, PG_DB: dbName };
  let service: S | undefined;

  before(async () => {
    service = await options.start({ ...auth.secrets, NODE_ENV: 'test', PORT: '0', REDIS_URL: urls.REDIS_URL, ...storeEnv });
  });
  after(async () => {
    if (service) {
      if (options.dropMongo) await options.dropMongo(service);
      await service.stop();
    }
    if (options.store === 'postgres') await dropPostgresDatabase(urls.PG_URL, dbName);
  });

  const storeChecks = [options.store, 'redis'];
  itBehavesLikeAService({ baseUrl: () => (service as S).url, auth, service: options.service, storeChecks });
}

/** Runs every migration up, checks the tables exist, then all the way down, checks they are gone, and up again. */
export function itMigratesUpAndDown(options: { service: string; migrations: Migration[]; tables: string[] }): void {
  it('runs its knex migrations up and down on a fresh database', async () => {
    const urls = storeUrls();
    const dbName = uniqueDbName(`${options.service}_mig`);
    await ensurePostgresDatabase(urls.PG_URL, dbName);
    const db = connectPostgres(pgUrlFor(urls.PG_URL, dbName));
    try {
      await migrateLatest(db, options.migrations);
      for (const table of options.tables) if (!(await db.schema.hasTable(table))) throw new Error(`${table} missing after up`);
      await migrateDownAll(db, options.migrations);
      for (const table of options.tables) if (await db.schema.hasTable(table)) throw new Error(`${table} still there after down`);
      await migrateLatest(db, options.migrations);
      for (const table of options.tables) if (!(await db.schema.hasTable(table))) throw new Error(`${table} missing after second up`);
    } finally {
      await db.destroy();
      await dropPostgresDatabase(urls.PG_URL, dbName);
    }
  });
}

export { configuredStoreUrl, readDevStoreUrls, resolveStoreUrls, STORE_URL_NAMES, type StoreUrlName, type StoreUrls } from './dev-stores.ts';
