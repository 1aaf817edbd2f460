import {
  ACCESS_TOKEN_TTL_SECONDS,
  ApiError,
  CLOCK_TOLERANCE_SECONDS,
  createKeyring,
  followRevocations,
  type Logger,
  loadModelCatalog,
  type RevocationMirror,
  ServiceClient,
} from '@platform/shared-types';
import type { Config } from './config.ts';
import { CatalogDal } from './features/catalog/catalog-dal.ts';
import { CatalogService } from './features/catalog/catalog-service.ts';
import { FlowiseClient } from './features/catalog/flowise-client.ts';
import { PricesClient } from './features/catalog/prices-client.ts';
import { FilesDal } from './features/files/files-dal.ts';
import { FilesService } from './features/files/files-service.ts';
import { UploadGuard } from './features/files/upload-guard.ts';
import { ConversationCache } from './features/sessions/conversation-cache.ts';
import { SessionsDal } from './features/sessions/sessions-dal.ts';
import { SessionsService } from './features/sessions/sessions-service.ts';
import { AccountingClient } from './features/stream/accounting-client.ts';
import { ChargeOutbox } from './features/stream/charge-outbox.ts';
import { ChatBus } from './features/stream/chat-bus.ts';
import { CreditHints } from './features/stream/speculative-start.ts';
import { StartQueue } from './features/stream/start-queue.ts';
import { StoreGate } from './features/stream/store-gate.ts';
import { StreamService } from './features/stream/stream-service.ts';
import { SupervisionService } from './features/supervision/supervision-service.ts';
import { ModelRegistry, type ProviderName } from './llm-catalog/model-registry.ts';
import { watchOutbox } from './metrics.ts';
import { createProviders, type ProviderOverrides } from './providers/providers.ts';
import type { Stores } from './stores.ts';

/** The chat service's moving parts, wired once per process. */
export interface ChatRuntime {
  models: ModelRegistry;
  catalog: CatalogService;
  sessions: SessionsService;
  /** the conversations streams read at their start (Redis, FerretDB the truth) */
  conversations: ConversationCache;
  streams: StreamService;
  supervision: SupervisionService;
  files: FilesService;
  bus: ChatBus;
  outbox: ChargeOutbox;
  /** store writes of streams wait behind the streams that are starting */
  gate: StoreGate;
  /** how many streams are in their start at once; the rest wait their turn */
  starts: StartQueue;
  /** this instance's copy of recent revocations: ends event streams whose token is revoked */
  revocations: RevocationMirror;
  /** starts the outbox retry loop, the upload sweep, the model cache refresh and (with FLOWISE_URL) the chatflow sync schedule */
  startBackground(): void;
  /** ends running streams (charging what they produced), stops the outbox and the bus */
  stop(): Promise<void>;
}

/**
 * How long a rename or delete that never said it ended (Redis failed after its store write) keeps streams of the
 * session from caching: far longer than any store write takes.
 */
const CONVERSATION_MUTATION_TTL_MS = 10 * 60_000;

type Parts = Pick<ChatRuntime, 'models' | 'catalog' | 'files' | 'outbox' | 'streams'>;

/** the catalog (seeded on a fresh install) and the model registry read through it */
async function createCatalog(config: Config, logger: Logger, stores: Stores, client: ServiceClient, configured: Set<ProviderName>) {
  const seed = loadModelCatalog(config.MODELS_FILE);
  const catalogDal = new CatalogDal(stores.mongo);
  await catalogDal.seed(seed);
  const catalog = new CatalogService({
    dal: catalogDal,
    redis: stores.redis,
    prices: new PricesClient(client),
    flowise: config.FLOWISE_URL
      ? new FlowiseClient({ baseUrl: config.FLOWISE_URL, apiKey: config.FLOWISE_API_KEY, timeoutMs: config.PROVIDER_TIMEOUT_MS })
      : undefined,
    providers: configured,
    options: {
      redisPrefix: config.REDIS_PREFIX,
      cacheTtlMs: config.MODELS_CACHE_TTL_MS,
      chatflowPrices: { inputPer1k: config.CHATFLOW_PRICE_INPUT_PER_1K, outputPer1k: config.CHATFLOW_PRICE_OUTPUT_PER_1K },
      syncLockMs: Math.max(60_000, config.PROVIDER_TIMEOUT_MS * 2),
    },
    logger,
    seedPrices: new Map(seed.map((m) => [m.id, m.prices])),
  });
  const models = await ModelRegistry.fromSource(configured, catalog.source());
  return { catalog, models };
}

function createFiles(config: Config, logger: Logger, stores: Stores): FilesService {
  const uploadGuard = new UploadGuard(stores.redis, {
    prefix: config.REDIS_PREFIX,
    maxConcurrent: config.FILE_MAX_CONCURRENT_UPLOADS,
    uploadTimeoutMs: config.FILE_UPLOAD_TIMEOUT_MS,
    maxRefused: config.FILE_REFUSED_MAX,
    refusedWindowSeconds: config.FILE_REFUSED_WINDOW_SECONDS,
  });
  return new FilesService(
    new FilesDal(stores.mongo),
    uploadGuard,
    {
      maxBytes: config.FILE_MAX_BYTES,
      uploadsPerDay: config.FILE_UPLOADS_PER_DAY,
      bytesPerDay: config.FILE_BYTES_PER_DAY,
      uploadIdleMs: config.FILE_UPLOAD_IDLE_MS,
      uploadTimeoutMs: config.FILE_UPLOAD_TIMEOUT_MS,
      promptMaxChars: config.FILE_PROMPT_MAX_CHARS,
      maxFilesPerMessage: config.MAX_FILES_PER_MESSAGE,
    },
    logger,
  );
}

function createBus(config: Config, logger: Logger, stores: Stores): ChatBus {
  return new ChatBus(stores.redis, {
    prefix: config.REDIS_PREFIX,
    logger,
    lockTtlMs: config.STREAM_LOCK_TTL_MS,
    replayMax: config.REPLAY_MAX_EVENTS,
    replayTtlSeconds: config.REPLAY_TTL_SECONDS,
  });
}

function createOutbox(config: Config, logger: Logger, stores: Stores, accounting: AccountingClient, dal: SessionsDal): ChargeOutbox {
  const outbox = new ChargeOutbox(stores.mongo, accounting, {
    logger,
    pollMs: config.OUTBOX_POLL_MS,
    backoffMinMs: config.OUTBOX_BACKOFF_MIN_MS,
    backoffMaxMs: config.OUTBOX_BACKOFF_MAX_MS,
    onSettled: (reservationId, credits) => dal.settleCharge(reservationId, credits),
  });
  watchOutbox(outbox);
  return outbox;
}

/** the outbox retry loop, the upload sweep, the model cache refresh and the chatflow sync schedule */
function background(config: Config, logger: Logger, parts: Parts) {
  const { models, catalog, files, outbox } = parts;
  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, task: () => Promise<unknown>, what: string) => {
    const timer = setInterval(() => task().catch((error: unknown) => logger.warn({ err: error }, `${what} failed`)), ms);
    timer.unref();
    timers.push(timer);
  };
  let sweeping: Promise<unknown> | undefined;
  // chunks of uploads cut by a crash of their instance (FerretDB has no TTL indexes)
  const sweepUploads = async () => {
    sweeping ??= files
      .sweepUnfinished()
      .then((removed) => removed > 0 && logger.info({ removed }, 'removed unfinished uploads'))
      .finally(() => {
        sweeping = undefined;
      });
    await sweeping;
  };
  // another instance syncing at the same moment is not a failure
  const syncChatflows = () =>
    catalog.syncChatflows().catch((error: unknown) => {
      if (!(error instanceof ApiError && error.code === 'CONFLICT')) throw error;
    });
  return {
    start: () => {
      outbox.start();
      every(config.FILE_SWEEP_INTERVAL_MS, sweepUploads, 'upload sweep');
      // callers that read the registry without awaiting refresh() still see a change within this bound
      every(Math.min(1_000, config.MODELS_CACHE_TTL_MS), () => models.refresh(), 'model cache refresh');
      if (catalog.flowiseConfigured && config.CHATFLOW_SYNC_MS > 0) every(config.CHATFLOW_SYNC_MS, syncChatflows, 'chatflow sync');
    },
    stop: async () => {
      for (const timer of timers) clearInterval(timer);
      await Promise.allSettled([sweeping]); // a failure was logged by the timer that ran it
    },
  };
}

export async function createRuntime(config: Config, logger: Logger, stores: Stores, overrides: ProviderOverrides = {}): Promise<ChatRuntime> {
  const providers = createProviders(config, overrides);
  const configured = new Set<ProviderName>(providers.keys());
  const client = new ServiceClient({
    caller: 'chat',
    internalKeyring: createKeyring(config.INTERNAL_SECRET),
    baseUrls: { accounting: config.ACCOUNTING_URL, monitoring: config.MONITORING_URL },
    connections: config.SERVICE_CLIENT_CONNECTIONS,
    logger,
  });
  const { catalog, models } = await createCatalog(config, logger, stores, client, configured);
  const bus = createBus(config, logger, stores);
  const dal = new SessionsDal(stores.mongo);
  const accounting = new AccountingClient(client);
  const outbox = createOutbox(config, logger, stores, accounting, dal);
  const files = createFiles(config, logger, stores);
  let late: StreamService | undefined;
  const gate = new StoreGate({ maxDeferMs: config.STORE_DEFER_MAX_MS });
  const starts = new StartQueue({ concurrency: config.STREAM_START_CONCURRENCY, maxWaiting: config.STREAM_START_QUEUE_MAX });
  const conversations = new ConversationCache(stores.redis, {
    key: (...parts) => bus.key(...parts),
    lockTtlMs: config.STREAM_LOCK_TTL_MS,
    ttlSeconds: config.CONVERSATION_CACHE_TTL_SECONDS,
    maxBytes: config.CONVERSATION_CACHE_MAX_BYTES,
    mutationTtlMs: CONVERSATION_MUTATION_TTL_MS,
    logger,
  });
  const sessions = new SessionsService({ dal, models, conversations, isStreaming: (sessionId) => (late as StreamService).isStreaming(sessionId) });
  const streams = new StreamService({
    config: { heartbeatMs: config.HEARTBEAT_MS, renewMs: config.RESERVATION_RENEW_MS },
    ...{ logger, models, providers, sessions, dal, bus, conversations, accounting, outbox },
    attachments: (userId, fileIds) => files.attachmentText(userId, fileIds),
    hints: new CreditHints({ maxAgeMs: config.SPECULATIVE_START_HINT_MS, maxEntries: config.SPECULATIVE_START_HINT_ENTRIES }),
    gate,
    starts,
  });
  late = streams;
  await streams.start();
  const supervision = new SupervisionService({ sessions, dal, streams, bus, client });
  const revocations = followRevocations({ redis: stores.redis, windowMs: (ACCESS_TOKEN_TTL_SECONDS + 2 * CLOCK_TOLERANCE_SECONDS) * 1000, logger });
  const jobs = background(config, logger, { models, catalog, files, outbox, streams });
  return {
    ...{ models, catalog, sessions, conversations, streams, supervision, files, bus, outbox, gate, starts },
    revocations: revocations.mirror,
    startBackground: jobs.start,
    async stop() {
      revocations.close();
      await jobs.stop();
      await streams.stop();
      await outbox.stop();
      await bus.close();
      await client.close();
    },
  };
}
