import { type Actor, ApiError, loadModelCatalog, type ModelEntry } from '@platform/shared-types';

export type ProviderName = ModelEntry['provider'];

/** The catalog filtered to providers that are configured here, with the access rules of each model. */
export class ModelRegistry {
  readonly #models: ModelEntry[];

  constructor(models: ModelEntry[], configured: ReadonlySet<ProviderName>) {
    this.#models = models.filter((model) => configured.has(model.provider));
  }

  static fromCatalog(configured: ReadonlySet<ProviderName>, file?: string): ModelRegistry {
    return new ModelRegistry(loadModelCatalog(file), configured);
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

  /** NOT_FOUND for an unknown (or unconfigured) model, FORBIDDEN for one the actor may not use */
  require(actor: Pick<Actor, 'userId' | 'role'>, modelId: string): ModelEntry {
    const model = this.#models.find((m) => m.id === modelId);
    if (!model) throw new ApiError('NOT_FOUND', `Unknown model ${modelId}`);
    if (!this.mayUse(actor, model)) throw new ApiError('FORBIDDEN', `You may not use model ${modelId}`);
    return model;
  }

  /** a catalog model by id, or a flowise model by its chatflow id (for the Flowise-compatible API) */
  findForChatflow(chatflowId: string): ModelEntry | undefined {
    return this.#models.find((m) => m.id === chatflowId) ?? this.#models.find((m) => m.provider === 'flowise' && m.upstreamModel === chatflowId);
  }
}
