import type { ModelEntry, Role } from '@platform/shared-types';
import type { Collection, Connection } from 'mongoose';
import { retryTransient } from '../../store-retry.ts';

/** A model as chat stores it: the catalog entry without prices (accounting holds those), plus its state. */
export interface ModelDoc extends Omit<ModelEntry, 'id' | 'prices'> {
  _id: string;
  enabled: boolean;
  /** 'catalog': seeded from the JSON catalog on a fresh install; 'admin': added at runtime */
  origin: 'catalog' | 'admin';
  createdAt: Date;
  updatedAt: Date;
  updatedBy?: string;
}

/** A Flowise chatflow as last seen by a sync; never deleted, so history that names it stays readable. */
export interface ChatflowDoc {
  /** Flowise's chatflow id */
  _id: string;
  /** the id sessions, predict and completions use */
  modelId: string;
  name: string;
  displayName?: string;
  deployed: boolean;
  /** false once a sync no longer finds it in Flowise */
  available: boolean;
  lastSeenAt: Date;
  isPublic: boolean;
  allowedUsers: string[];
  allowedRoles: Role[];
  createdAt: Date;
  updatedAt: Date;
}

export type ModelPatch = Partial<Omit<ModelDoc, '_id' | 'origin' | 'createdAt' | 'updatedAt'>>;
export type ChatflowPatch = Partial<Pick<ChatflowDoc, 'isPublic' | 'allowedUsers' | 'allowedRoles' | 'displayName'>>;

const DUPLICATE_KEY = 11000;

export function isDuplicateKey(error: unknown): boolean {
  return (error as { code?: number }).code === DUPLICATE_KEY;
}

/** Models and chatflows in chat's MongoDB (driver collections: documents keyed by their public id). */
export class CatalogDal {
  readonly #models: Collection<ModelDoc>;
  readonly #chatflows: Collection<ChatflowDoc>;

  constructor(mongo: Connection) {
    this.#models = mongo.collection<ModelDoc>('models');
    this.#chatflows = mongo.collection<ChatflowDoc>('chatflows');
  }

  /** adds every catalog model the store does not hold yet; what admins changed is kept */
  async seed(catalog: ModelEntry[]): Promise<void> {
    const now = new Date();
    for (const { id, prices: _prices, ...entry } of catalog) {
      try {
        await retryTransient(() =>
          this.#models.updateOne(
            { _id: id },
            { $setOnInsert: { ...entry, enabled: true, origin: 'catalog', createdAt: now, updatedAt: now } },
            { upsert: true },
          ),
        );
      } catch (error) {
        if (!isDuplicateKey(error)) throw error; // another instance seeded it at the same moment
      }
    }
  }

  listModels(): Promise<ModelDoc[]> {
    return retryTransient(() => this.#models.find({}).sort({ _id: 1 }).toArray());
  }

  findModel(id: string): Promise<ModelDoc | null> {
    return retryTransient(() => this.#models.findOne({ _id: id }));
  }

  /** CONFLICT-worthy duplicate ids surface as a duplicate-key error */
  async insertModel(doc: ModelDoc): Promise<void> {
    await this.#models.insertOne(doc);
  }

  async updateModel(id: string, patch: ModelPatch & { updatedBy: string }): Promise<ModelDoc | null> {
    return retryTransient(() => this.#models.findOneAndUpdate({ _id: id }, { $set: { ...patch, updatedAt: new Date() } }, { returnDocument: 'after' }));
  }

  listChatflows(): Promise<ChatflowDoc[]> {
    return retryTransient(() => this.#chatflows.find({}).sort({ name: 1, _id: 1 }).toArray());
  }

  async insertChatflow(doc: ChatflowDoc): Promise<void> {
    try {
      await retryTransient(() => this.#chatflows.insertOne(doc));
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
  }

  async updateChatflow(id: string, set: Partial<ChatflowDoc>): Promise<ChatflowDoc | null> {
    return retryTransient(() => this.#chatflows.findOneAndUpdate({ _id: id }, { $set: { ...set, updatedAt: new Date() } }, { returnDocument: 'after' }));
  }
}
