import { type Actor, ApiError, loadModelCatalog, type ModelEntry } from '@platform/shared-types';

export type ProviderName = ModelEntry['provider'];

/** What the registry serves from: the usable models (enabled, priced) and the ids of disabled ones. */
export interface RegistrySnapshot {
  models: ModelEntry[];
  disabled: string[];
}

/**
 * Where a runtime registry reads models from (chat's store plus accounting's prices) and the version that
 * changes with every admin write (a Redis counter), so every instance sees a change on its next request.
 */
export interface RegistrySource {
  version(): Promise<string | null>;
  load(): Promise<RegistrySnapshot>;
  ttlMs: number;
}

/**
 * The models of providers configured here, with the access rules of each. The reading methods are synchronous
 * and answer from an in-memory snapshot; `refresh()` brings the snapshot up to date (one Redis read when nothing
 * changed) and is awaited by request paths that decide on access.
 */
export class ModelRegistry {
  #models: ModelEntry[];
  #disabled = new Set<string>();
  readonly #configured: ReadonlySet<ProviderName>;
  readonly #source: RegistrySource | undefined;
  #version: string | null = null;
  #loadedAt = 0;
  #reloading: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  constructor(models: ModelEntry[], configured: ReadonlySet<ProviderName>, source?: RegistrySource) {
    this.#configured = configured;
    this.#models = models.filter((model) => configured.has(model.provider));
    this.#source = source;
  }

  static fromCatalog(configured: ReadonlySet<ProviderName>, file?: string): ModelRegistry {
    return new ModelRegistry(loadModelCatalog(file), configured);
  }

  /** a registry over chat's store, loaded once before it is returned */
  static async fromSource(configured: ReadonlySet<ProviderName>, source: RegistrySource): Promise<ModelRegistry> {
    const registry = new ModelRegistry([], configured, source);
    await registry.reload();
    return registry;
  }

  /** re-reads the source when its version moved or the snapshot is older than the TTL; keeps the last snapshot on failure */
  async refresh(): Promise<void> {
    const source = this.#source;
    if (!source) return;
    if (Date.now() - this.#loadedAt < source.ttlMs && (await source.version()) === this.#version) return;
    await this.reload();
  }

  /**
   * For a stream's start: waits for a reload only when the version moved (an admin's change of access or
   * enablement holds from this request on). A snapshot that is only older than the TTL (a price set in accounting,
   * which charges at its own price anyway) answers at once while a reload runs, so the first token never waits for
   * a catalog read queued behind the store's writes; that reload's failure keeps the snapshot, and the periodic
   * refresh tries again and logs it.
   */
  async refreshAccess(): Promise<void> {
    const source = this.#source;
    if (!source) return;
    if ((await source.version()) !== this.#version) return this.reload();
    if (Date.now() - this.#loadedAt >= source.ttlMs && !this.#reloading) this.reload().catch(() => undefined);
  }

  /**
   * Re-reads the source with a read that starts after this call: callers while no read runs share one; callers
   * while one runs share the next (the running one may have read the store before the change they must see).
   */
  reload(): Promise<void> {
    const source = this.#source;
    if (!source) return Promise.resolve();
    if (this.#reloading) {
      this.#queued ??= this.#reloading
        .catch(() => undefined)
        .then(() => {
          this.#queued = undefined;
          return this.reload();
        });
      return this.#queued;
    }
    this.#reloading = (async () => {
      try {
        const version = await source.version();
        const snapshot = await source.load();
        this.#models = snapshot.models.filter((model) => this.#configured.has(model.provider));
        this.#disabled = new Set(snapshot.disabled);
        this.#version = version;
        this.#loadedAt = Date.now();
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  providers(): ReadonlySet<ProviderName> {
    return this.#configured;
  }

  all(): ModelEntry[] {
    return [...this.#models];
  }

  /** public, or the actor's role is listed, or the actor is listed by id; admins may use everything */
  mayUse(actor: Pick<Actor, 'userId' | 'role'>, model: ModelEntry): boolean {
    if (actor.role === 'admin') return true;
    const { access } = model;
    return access.public === true || (access.roles ?? []).includes(actor.role) || (access.users ?? []).includes(actor.userId);
  }

  listFor(actor: Pick<Actor, 'userId' | 'role'>): ModelEntry[] {
    return this.#models.filter((model) => this.mayUse(actor, model));
  }

  /** NOT_FOUND for an unknown (or unconfigured) model, FORBIDDEN for a disabled one or one the actor may not use */
  require(actor: Pick<Actor, 'userId' | 'role'>, modelId: string): ModelEntry {
    const model = this.#models.find((m) => m.id === modelId);
    if (!model && this.#disabled.has(modelId)) throw new ApiError('FORBIDDEN', `Model ${modelId} is disabled`);
    if (!model) throw new ApiError('NOT_FOUND', `Unknown model ${modelId}`);
    if (!this.mayUse(actor, model)) throw new ApiError('FORBIDDEN', `You may not use model ${modelId}`);
    return model;
  }

  /** a catalog model by id, or a flowise model by its chatflow id (for the Flowise-compatible API) */
  findForChatflow(chatflowId: string): ModelEntry | undefined {
    return this.#models.find((m) => m.id === chatflowId) ?? this.#models.find((m) => m.provider === 'flowise' && m.upstreamModel === chatflowId);
  }
}
