import { randomUUID } from 'node:crypto';
import { type Actor, ApiError, type Logger, type ModelEntry, type Role } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { ProviderName, RegistrySnapshot, RegistrySource } from '../../llm-catalog/model-registry.ts';
import { type CatalogDal, type ChatflowDoc, type ChatflowPatch, isDuplicateKey, type ModelDoc, type ModelPatch } from './catalog-dal.ts';
import type { FlowiseClient, RemoteChatflow } from './flowise-client.ts';
import type { Prices, PricesClient } from './prices-client.ts';

/** limits a synced chatflow gets (Flowise does not tell them); admins tune prices in accounting */
const CHATFLOW_LIMITS = { defaultMaxOutputTokens: 1024, maxOutputTokens: 2048, contextTokens: 32_000 } as const;
export const CHATFLOW_MODEL_PREFIX = 'chatflow-';

export interface CatalogOptions {
  redisPrefix: string;
  cacheTtlMs: number;
  chatflowPrices: Prices;
  /** how long one sync may hold the single-winner lock */
  syncLockMs: number;
}

export interface ModelAdminView extends Omit<ModelDoc, '_id' | 'createdAt' | 'updatedAt'> {
  id: string;
  prices: Prices | null;
  configured: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface ChatflowView {
  id: string;
  modelId: string;
  name: string;
  displayName: string;
  deployed: boolean;
  available: boolean;
  lastSeenAt: string;
  isPublic: boolean;
  allowedUsers: string[];
  allowedRoles: Role[];
  prices: Prices | null;
}

export interface SyncReport {
  added: Array<{ id: string; name: string }>;
  renamed: Array<{ id: string; from: string; to: string }>;
  retired: string[];
  restored: string[];
  unchanged: number;
  syncedAt: string;
}

export type NewModel = Omit<ModelEntry, 'prices' | 'access'> & { access?: ModelEntry['access']; enabled?: boolean; prices?: Prices };

/** a Flowise id as a model id (lower case, safe characters only) */
export function chatflowModelId(flowiseId: string): string {
  return (
    CHATFLOW_MODEL_PREFIX +
    flowiseId
      .toLowerCase()
      .replace(/[^a-z0-9._-]/g, '-')
      .slice(0, 64 - CHATFLOW_MODEL_PREFIX.length)
  );
}

/**
 * Models and chatflows managed at runtime. Every write bumps a Redis version key; each instance's registry
 * compares it on the next request and re-reads, so a change holds at once on every instance.
 */
export class CatalogService {
  readonly #dal: CatalogDal;
  readonly #redis: Redis;
  readonly #prices: PricesClient;
  readonly #flowise: FlowiseClient | undefined;
  readonly #providers: ReadonlySet<ProviderName>;
  readonly #options: CatalogOptions;
  readonly #logger: Logger;
  /** prices last read from accounting; kept when accounting is briefly unreachable */
  #knownPrices = new Map<string, Prices>();

  constructor(deps: {
    dal: CatalogDal;
    redis: Redis;
    prices: PricesClient;
    flowise?: FlowiseClient;
    providers: ReadonlySet<ProviderName>;
    options: CatalogOptions;
    logger: Logger;
    seedPrices: Map<string, Prices>;
  }) {
    this.#dal = deps.dal;
    this.#redis = deps.redis;
    this.#prices = deps.prices;
    this.#flowise = deps.flowise;
    this.#providers = deps.providers;
    this.#options = deps.options;
    this.#logger = deps.logger;
    this.#knownPrices = new Map(deps.seedPrices);
  }

  get #versionKey(): string {
    return `${this.#options.redisPrefix}models:version`;
  }

  /** the registry's view of this store */
  source(): RegistrySource {
    return { ttlMs: this.#options.cacheTtlMs, version: () => this.#redis.get(this.#versionKey), load: () => this.snapshot() };
  }

  async #bump(): Promise<void> {
    await this.#redis.incr(this.#versionKey);
  }

  async #pricesNow(): Promise<Map<string, Prices>> {
    try {
      this.#knownPrices = await this.#prices.list();
    } catch (error) {
      this.#logger.warn({ err: error }, 'accounting prices unreachable; using the last known ones');
    }
    return this.#knownPrices;
  }

  /** usable models: enabled (or available chatflows) with a price in accounting */
  async snapshot(): Promise<RegistrySnapshot> {
    const [models, chatflows, prices] = await Promise.all([this.#dal.listModels(), this.#dal.listChatflows(), this.#pricesNow()]);
    const usable: ModelEntry[] = [];
    const disabled: string[] = [];
    for (const doc of models) {
      const price = prices.get(doc._id);
      if (doc.enabled && price) usable.push(modelEntryOf(doc, price));
      else disabled.push(doc._id);
    }
    for (const flow of chatflows) {
      const price = prices.get(flow.modelId);
      if (flow.available && price) usable.push(chatflowEntryOf(flow, price));
      else disabled.push(flow.modelId);
    }
    return { models: usable, disabled };
  }

  // ---- models ----

  async listModels(): Promise<ModelAdminView[]> {
    const [models, prices] = await Promise.all([this.#dal.listModels(), this.#pricesNow()]);
    return models.map((doc) => this.#modelView(doc, prices.get(doc._id) ?? null));
  }

  /** adds a model; its first prices go to accounting (which keeps a price it already holds); enabled only when priced */
  async addModel(actor: Actor, input: NewModel): Promise<ModelAdminView> {
    if (input.id.startsWith(CHATFLOW_MODEL_PREFIX)) throw fieldError('body.id', `ids starting with ${CHATFLOW_MODEL_PREFIX} are chatflows`);
    this.#checkProvider(input.provider);
    checkLimits(input);
    if (await this.#dal.findModel(input.id)) throw new ApiError('CONFLICT', `Model ${input.id} exists`);
    const enabled = input.enabled ?? true;
    const price = input.prices
      ? await this.#prices.register(input.id, { displayName: input.displayName, ...input.prices })
      : (await this.#pricesNow()).get(input.id);
    if (enabled && !price)
      throw new ApiError('CONFLICT', `Accounting has no price for ${input.id}: give prices, or add it disabled and give them when enabling it`);
    const now = new Date();
    const { prices: _prices, enabled: _enabled, access, ...entry } = input;
    const doc: ModelDoc = { ...entry, _id: input.id, access: access ?? {}, enabled, origin: 'admin', createdAt: now, updatedAt: now, updatedBy: actor.userId };
    try {
      await this.#dal.insertModel(doc);
    } catch (error) {
      if (isDuplicateKey(error)) throw new ApiError('CONFLICT', `Model ${input.id} exists`);
      throw error;
    }
    await this.#bump();
    return this.#modelView(doc, price ?? null);
  }

  /**
   * Changes limits, access, upstream or state; enabling needs a price in accounting. `prices` may only be the first
   * ones of a model accounting has none for (accounting's PUT /api/models/prices/:modelId changes a held price).
   */
  async updateModel(actor: Actor, id: string, input: ModelPatch & { prices?: Prices }): Promise<ModelAdminView> {
    const current = await this.#dal.findModel(id);
    if (!current) throw new ApiError('NOT_FOUND', `Unknown model ${id}`);
    const { prices: firstPrices, ...patch } = input;
    if (patch.provider) this.#checkProvider(patch.provider);
    checkLimits({ ...current, ...patch });
    let price = (await this.#pricesNow()).get(id);
    if (firstPrices && price) throw new ApiError('CONFLICT', `Accounting already holds a price for ${id}: change it with PUT /api/models/prices/${id}`);
    if (patch.enabled === true && !price && !firstPrices) throw new ApiError('CONFLICT', `Accounting has no price for ${id}: give prices with this change`);
    if (firstPrices) price = await this.#prices.register(id, { displayName: patch.displayName ?? current.displayName, ...firstPrices });
    const updated = await this.#dal.updateModel(id, { ...patch, updatedBy: actor.userId });
    if (!updated) throw new ApiError('NOT_FOUND', `Unknown model ${id}`);
    await this.#bump();
    return this.#modelView(updated, price ?? null);
  }

  #checkProvider(provider: ProviderName): void {
    if (!this.#providers.has(provider)) throw fieldError('body.provider', `Provider ${provider} is not configured on this platform`);
  }

  #modelView(doc: ModelDoc, prices: Prices | null): ModelAdminView {
    const { _id, createdAt, updatedAt, ...rest } = doc;
    return { ...rest, id: _id, prices, configured: this.#providers.has(doc.provider), createdAt: createdAt.toISOString(), updatedAt: updatedAt.toISOString() };
  }

  // ---- chatflows ----

  async listChatflows(): Promise<ChatflowView[]> {
    const [flows, prices] = await Promise.all([this.#dal.listChatflows(), this.#pricesNow()]);
    return flows.map((flow) => chatflowView(flow, prices.get(flow.modelId) ?? null));
  }

  async updateChatflow(id: string, patch: ChatflowPatch): Promise<ChatflowView> {
    const updated = await this.#dal.updateChatflow(id, patch);
    if (!updated) throw new ApiError('NOT_FOUND', `Unknown chatflow ${id}`);
    await this.#bump();
    return chatflowView(updated, (await this.#pricesNow()).get(updated.modelId) ?? null);
  }

  get flowiseConfigured(): boolean {
    return this.#flowise !== undefined;
  }

  /**
   * Reads Flowise's chatflow list and brings the store in line: new ones are added (private), renamed ones
   * renamed, missing ones retired (kept, unavailable). One instance at a time: a Redis lock, since FerretDB does
   * not apply conditional updates atomically. CONFLICT when another sync holds the lock.
   */
  async syncChatflows(): Promise<SyncReport> {
    const flowise = this.#flowise;
    // a state of this install the admin can change (not an outage): 409, never a 5xx
    if (!flowise) throw new ApiError('CONFLICT', 'Flowise is not configured: set FLOWISE_URL (and FLOWISE_API_KEY) to sync chatflows');
    const lockKey = `${this.#options.redisPrefix}chatflows:sync-lock`;
    const token = randomUUID();
    if ((await this.#redis.set(lockKey, token, 'PX', this.#options.syncLockMs, 'NX')) !== 'OK')
      throw new ApiError('CONFLICT', 'Another chatflow sync is running');
    try {
      const remote = await flowise.listChatflows();
      const report = await this.#apply(remote);
      await this.#bump();
      return report;
    } finally {
      await this.#redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, lockKey, token);
    }
  }

  async #apply(remote: RemoteChatflow[]): Promise<SyncReport> {
    const now = new Date();
    const existing = new Map((await this.#dal.listChatflows()).map((flow) => [flow._id, flow]));
    const prices = await this.#pricesNow();
    const report: SyncReport = { added: [], renamed: [], retired: [], restored: [], unchanged: 0, syncedAt: now.toISOString() };
    const seen = new Set<string>();
    for (const flow of remote) {
      if (seen.has(flow.id)) continue;
      seen.add(flow.id);
      const known = existing.get(flow.id);
      const modelId = known?.modelId ?? chatflowModelId(flow.id);
      if (!prices.has(modelId)) await this.#prices.register(modelId, { displayName: flow.name, ...this.#options.chatflowPrices });
      if (!known) {
        await this.#dal.insertChatflow({
          _id: flow.id,
          modelId,
          name: flow.name,
          deployed: flow.deployed,
          available: true,
          lastSeenAt: now,
          isPublic: false,
          allowedUsers: [],
          allowedRoles: [],
          createdAt: now,
          updatedAt: now,
        });
        report.added.push({ id: flow.id, name: flow.name });
        continue;
      }
      if (known.name !== flow.name) report.renamed.push({ id: flow.id, from: known.name, to: flow.name });
      if (!known.available) report.restored.push(flow.id);
      if (known.name === flow.name && known.available) report.unchanged++;
      await this.#dal.updateChatflow(flow.id, { name: flow.name, deployed: flow.deployed, available: true, lastSeenAt: now });
    }
    for (const flow of existing.values()) {
      if (seen.has(flow._id) || !flow.available) continue;
      await this.#dal.updateChatflow(flow._id, { available: false });
      report.retired.push(flow._id);
    }
    return report;
  }
}

function modelEntryOf(doc: ModelDoc, prices: Prices): ModelEntry {
  const { _id, enabled: _e, origin: _o, createdAt: _c, updatedAt: _u, updatedBy: _b, ...entry } = doc;
  return { ...entry, id: _id, prices };
}

function chatflowEntryOf(flow: ChatflowDoc, prices: Prices): ModelEntry {
  return {
    id: flow.modelId,
    displayName: flow.displayName ?? flow.name,
    provider: 'flowise',
    upstreamModel: flow._id,
    ...CHATFLOW_LIMITS,
    access: { public: flow.isPublic, roles: flow.allowedRoles, users: flow.allowedUsers },
    prices,
  };
}

function chatflowView(flow: ChatflowDoc, prices: Prices | null): ChatflowView {
  return {
    id: flow._id,
    modelId: flow.modelId,
    name: flow.name,
    displayName: flow.displayName ?? flow.name,
    deployed: flow.deployed,
    available: flow.available,
    lastSeenAt: flow.lastSeenAt.toISOString(),
    isPublic: flow.isPublic,
    allowedUsers: flow.allowedUsers,
    allowedRoles: flow.allowedRoles,
    prices,
  };
}

function checkLimits(model: Pick<ModelEntry, 'defaultMaxOutputTokens' | 'maxOutputTokens'>): void {
  if (model.defaultMaxOutputTokens > model.maxOutputTokens) throw fieldError('body.defaultMaxOutputTokens', 'must not exceed maxOutputTokens');
}

function fieldError(path: string, message: string): ApiError {
  return new ApiError('VALIDATION_FAILED', message, { errors: [{ path, message }] });
}
