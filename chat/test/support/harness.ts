import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Actor, loadModelCatalog, type ModelEntry } from '@platform/shared-types';
import { createTestAuth, storeUrls, type TestAuth, testActor, uniqueDbName, withGatewaySigner } from '@platform/shared-types/testing';
import { createParser } from 'eventsource-parser';
import { type RequestInit, type Response, fetch as undiciFetch } from 'undici';
import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';
import type { ProviderOverrides } from '../../src/providers/providers.ts';
import { AccountingStandIn, MonitoringStandIn } from './stand-ins.ts';

// Test traffic goes through undici's own fetch, which nock does not intercept (nock only fakes the providers),
// with the kit's stand-in for the gateway's signing step in front (identity signatures are bound to the request).
export const fetch = withGatewaySigner(undiciFetch);

/** The shared catalog plus local models with restricted access, for the access rules. */
const TEST_MODELS_FILE = join(tmpdir(), `chat-test-models-${process.pid}.json`);
writeFileSync(
  TEST_MODELS_FILE,
  JSON.stringify({
    models: [
      ...loadModelCatalog(),
      { ...localModel(), id: 'local-staff', access: { roles: ['supervisor'] } },
      { ...localModel(), id: 'local-vip', access: { users: ['vip-user-id'] } },
      { ...localModel(), id: 'local-tiny', contextTokens: 300, defaultMaxOutputTokens: 100, access: { public: true } },
    ],
  }),
);
function localModel() {
  return loadModelCatalog().find((m) => m.provider === 'local') as ModelEntry;
}

export type ChatService = Awaited<ReturnType<typeof start>>;

/** Polls a condition until it holds (bounded); no fixed sleeps. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** An SSE response read as it arrives: events and comments so far, wait helpers, and abort. */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  response!: Response;
  ended = false;
  readonly #controller = new AbortController();
  #done!: Promise<void>;

  static async open(url: string, init: RequestInit = {}): Promise<SseClient> {
    const client = new SseClient();
    client.response = await fetch(url, { ...init, signal: client.#controller.signal });
    client.#done = client.#read();
    return client;
  }

  async #read(): Promise<void> {
    if (!this.response.body || !String(this.response.headers.get('content-type')).startsWith('text/event-stream')) {
      this.ended = true;
      return;
    }
    const parser = createParser({
      onEvent: (message) => this.events.push({ event: message.event ?? 'message', data: JSON.parse(message.data) as Record<string, unknown> }),
      onComment: (comment) => this.comments.push(comment.trim()),
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.response.body) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
    } catch {
      // aborted by the test
    }
    this.ended = true;
  }

  get status(): number {
    return this.response.status;
  }

  named(event: string): SseEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  text(): string {
    return this.named('delta')
      .map((e) => e.data.text)
      .join('');
  }

  terminal(): SseEvent | undefined {
    return this.events.find((e) => ['done', 'interrupted', 'error'].includes(e.event));
  }

  waitForEvent(event: string, timeoutMs = 10_000): Promise<SseEvent> {
    return waitFor(() => this.events.find((e) => e.event === event), `event ${event}`, timeoutMs);
  }

  waitForComment(comment: string, timeoutMs = 10_000): Promise<string> {
    return waitFor(() => this.comments.find((c) => c === comment), `comment ${comment}`, timeoutMs);
  }

  async waitForEnd(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.ended, 'end of stream', timeoutMs);
    await this.#done;
  }

  abort(): void {
    this.#controller.abort();
  }
}

export interface Platform {
  auth: TestAuth;
  accounting: AccountingStandIn;
  monitoring: MonitoringStandIn;
  instances: ChatService[];
  mongoDb: string;
  redisPrefix: string;
  /** headers the gateway would send for the actor (signed identity + forwarded bearer token) */
  headers(actor: Actor, extra?: Record<string, string>): Record<string, string>;
  json(actor: Actor): Record<string, string>;
  stop(): Promise<void>;
}

export const FAST = {
  LOCAL_MODEL_TOKENS: '12',
  LOCAL_MODEL_TOKEN_DELAY_MS: '2',
  HEARTBEAT_MS: '1000',
  OUTBOX_POLL_MS: '25',
  OUTBOX_BACKOFF_MIN_MS: '20',
  OUTBOX_BACKOFF_MAX_MS: '200',
};

/**
 * Stand-ins for accounting and monitoring plus `count` chat instances sharing one fresh MongoDB database and
 * one Redis key prefix (so they see each other, and nothing else).
 */
export async function startPlatform(options: { count?: number; env?: Record<string, string>; providers?: ProviderOverrides } = {}): Promise<Platform> {
  const auth = createTestAuth();
  const urls = storeUrls();
  const accounting = await new AccountingStandIn(auth, TEST_MODELS_FILE).start();
  const monitoring = await new MonitoringStandIn(auth).start();
  const mongoDb = uniqueDbName('chat');
  const redisPrefix = `chat-test-${randomBytes(4).toString('hex')}:`;
  const instances: ChatService[] = [];
  for (let i = 0; i < (options.count ?? 1); i++) {
    instances.push(
      await startOnce(
        configSchema.parse({
          ...auth.secrets,
          NODE_ENV: 'test',
          PORT: '0',
          MONGO_URL: urls.MONGO_URL,
          MONGO_DB: mongoDb,
          REDIS_URL: urls.REDIS_URL,
          REDIS_PREFIX: redisPrefix,
          ACCOUNTING_URL: accounting.url,
          MONITORING_URL: monitoring.url,
          MODELS_FILE: TEST_MODELS_FILE,
          ...FAST,
          ...options.env,
        }),
        { providers: options.providers },
      ),
    );
  }
  const headers = (actor: Actor, extra: Record<string, string> = {}) => ({
    ...auth.identityHeaders(actor),
    authorization: `Bearer ${auth.token(actor)}`,
    ...extra,
  });
  return {
    auth,
    accounting,
    monitoring,
    instances,
    mongoDb,
    redisPrefix,
    headers,
    json: (actor) => headers(actor, { 'content-type': 'application/json' }),
    async stop() {
      const first = instances[0] as ChatService;
      const redis = first.stores.redis;
      const keys = await redis.keys(`${redisPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await first.stores.mongo.dropDatabase();
      for (const instance of instances) await instance.stop();
      await accounting.stop();
      await monitoring.stop();
    },
  };
}

export { testActor };

/** start(), with a stop that may be called again (a test may stop an instance itself) */
async function startOnce(...args: Parameters<typeof start>): Promise<ChatService> {
  const service = await start(...args);
  let stopping: Promise<void> | undefined;
  return { ...service, stop: () => (stopping ??= service.stop()) };
}

/** Creates a session and returns its id. */
export async function createSession(platform: Platform, actor: Actor, modelId = 'local-dev', instance = 0): Promise<string> {
  const response = await fetch(`${(platform.instances[instance] as ChatService).url}/api/chat/sessions`, {
    method: 'POST',
    headers: platform.json(actor),
    body: JSON.stringify({ modelId }),
  });
  if (response.status !== 201) throw new Error(`create session: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { session: { id: string } }).session.id;
}

export function streamMessage(
  platform: Platform,
  actor: Actor,
  sessionId: string,
  message: string,
  instance = 0,
  extra: Record<string, unknown> = {},
): Promise<SseClient> {
  return SseClient.open(`${(platform.instances[instance] as ChatService).url}/api/chat/sessions/${sessionId}/stream`, {
    method: 'POST',
    headers: platform.json(actor),
    body: JSON.stringify({ message, ...extra }),
  });
}
