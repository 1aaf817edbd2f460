import { type Actor, API_KEY_SHOWN_PREFIX_LENGTH, ApiError, authorize, generateApiKey, hashApiKey, type Logger } from '@platform/shared-types';
import type { ApiKeyDoc, UserDoc } from '../../documents.ts';
import type { UsersDal } from '../users/users-dal.ts';
import type { ApiKeysDal } from './api-keys-dal.ts';

/** keys one user may hold at once */
export const MAX_KEYS_PER_USER = 50;

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt?: string;
  creditLimit?: number;
  lastUsedAt?: string;
}

function toView(key: ApiKeyDoc, lastUsedAt?: Date): ApiKeyView {
  return {
    id: key._id.toString(),
    name: key.name,
    prefix: key.prefix,
    createdAt: key.createdAt.toISOString(),
    ...(key.expiresAt ? { expiresAt: key.expiresAt.toISOString() } : {}),
    ...(key.creditLimit !== null ? { creditLimit: key.creditLimit } : {}),
    ...(lastUsedAt ? { lastUsedAt: lastUsedAt.toISOString() } : {}),
  };
}

export function apiKeysService(deps: { dal: ApiKeysDal; users: Pick<UsersDal, 'findById'>; logger: Logger }) {
  const { dal, users, logger } = deps;
  /** Whose keys the actor acts on: its own, or (admins only) the given user's. A key cannot manage keys. */
  async function owner(actor: Actor, userId: string | undefined): Promise<UserDoc> {
    // a key with a credit limit must not be able to mint itself an unlimited sibling
    if (actor.apiKeyId) throw new ApiError('FORBIDDEN', 'API keys cannot manage API keys: sign in with a password');
    const target = userId ?? actor.userId;
    await authorize(actor, 'api-keys:manage', { ownerId: target });
    const user = await users.findById(target);
    if (!user) throw new ApiError('NOT_FOUND', 'User not found');
    return user;
  }

  return {
    async create(actor: Actor, input: { name: string; expiresInDays?: number; creditLimit?: number; userId?: string }) {
      const user = await owner(actor, input.userId);
      if (user.status !== 'active') throw new ApiError('CONFLICT', 'The user is disabled');
      if ((await dal.countLive(user._id.toString())) >= MAX_KEYS_PER_USER) {
        throw new ApiError('CONFLICT', `At most ${MAX_KEYS_PER_USER} API keys per user: delete one first`);
      }
      const key = generateApiKey();
      const doc = await dal.create({
        userId: user._id.toString(),
        name: input.name,
        keyHash: hashApiKey(key),
        prefix: key.slice(0, API_KEY_SHOWN_PREFIX_LENGTH),
        expiresAt: input.expiresInDays ? new Date(Date.now() + input.expiresInDays * 86_400_000) : null,
        creditLimit: input.creditLimit ?? null,
      });
      try {
        await dal.writeEntries(user, [doc]);
      } catch (error) {
        // nothing half written: a key the gateway cannot resolve is not handed out
        await dal
          .removeDoc(doc._id)
          .catch((cleanup: unknown) =>
            logger.error({ err: cleanup, apiKeyId: doc._id.toString() }, 'api key document left behind after its gateway entry failed (never handed out)'),
          );
        throw error;
      }
      logger.info({ apiKeyId: doc._id.toString(), userId: user._id.toString(), by: actor.userId }, 'api key created');
      return { ...toView(doc), key };
    },

    async list(actor: Actor, userId: string | undefined): Promise<ApiKeyView[]> {
      const user = await owner(actor, userId);
      const keys = await dal.listLive(user._id.toString());
      // last-used times are an extra: the list stands without them
      const lastUsed = await dal.lastUsed(keys).catch((error: unknown) => {
        logger.warn({ err: error, userId: user._id.toString() }, 'api key last-used times unavailable');
        return new Map<string, Date>();
      });
      return keys.map((key) => toView(key, lastUsed.get(key._id.toString())));
    },

    /** The Redis entry goes first: once it is gone the key is dead, whatever happens to the document. */
    async remove(actor: Actor, id: string, userId: string | undefined): Promise<void> {
      const user = await owner(actor, userId);
      const key = await dal.findLive(user._id.toString(), id);
      if (!key) throw new ApiError('NOT_FOUND', 'API key not found');
      await dal.removeEntries([key]);
      await dal.markDeleted(key._id);
      logger.info({ apiKeyId: id, userId: user._id.toString(), by: actor.userId }, 'api key deleted');
    },

    /** Owner and credit limit of any key, deleted ones included (accounting's reservations through it). */
    async describe(id: string) {
      const key = await dal.findAny(id);
      if (!key) throw new ApiError('NOT_FOUND', 'API key not found');
      return { id: key._id.toString(), userId: key.userId.toString(), creditLimit: key.creditLimit, deleted: key.deletedAt !== null };
    },

    /** After a role or status change: a disabled user's keys leave Redis, an active user's are rewritten with the new role. */
    async syncUser(user: UserDoc): Promise<void> {
      const keys = await dal.listLive(user._id.toString());
      if (user.status === 'disabled') await dal.removeEntries(keys);
      else await dal.writeEntries(user, keys);
    },
  };
}

export type ApiKeysService = ReturnType<typeof apiKeysService>;
