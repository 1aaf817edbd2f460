import { type Actor, ApiError, internalApiKeyResponse, type ReservationResponse, type ServiceClient } from '@platform/shared-types';
import { withRetry } from '../../db.ts';
import type { AccountsDal } from '../accounts/accounts-dal.ts';
import { reservationView } from '../reservations/reservations-service.ts';
import type { ApiKeySpend, ApiKeysDal, KnownApiKey } from './api-keys-dal.ts';

/** Auth's record of a key (owner, limit), or undefined when auth does not know the id. */
export type ApiKeyLookup = (id: string) => Promise<KnownApiKey | undefined>;

export function authApiKeyLookup(client: ServiceClient): ApiKeyLookup {
  return async (id) => {
    try {
      const { body } = await client.call('auth', `/internal/api-keys/${encodeURIComponent(id)}`);
      const parsed = internalApiKeyResponse.safeParse(body);
      if (!parsed.success) throw new ApiError('UPSTREAM_UNAVAILABLE', 'auth answered an unexpected API key', { status: 502 });
      return { id: parsed.data.id, userId: parsed.data.userId, creditLimit: parsed.data.creditLimit };
    } catch (error) {
      if (error instanceof ApiError && (error.code === 'NOT_FOUND' || error.code === 'VALIDATION_FAILED')) return undefined;
      throw error;
    }
  };
}

export function reservationApiKey(actor: Actor, named: string | undefined): string | undefined {
  if (actor.apiKeyId && named && actor.apiKeyId !== named) throw new ApiError('FORBIDDEN', 'The API key named differs from the token’s');
  return actor.apiKeyId ?? named;
}

export interface ApiKeysDeps {
  keys: ApiKeysDal;
  accounts: Pick<AccountsDal, 'findAccount'>;
  /** auth's record of a key accounting has not seen yet */
  lookup: ApiKeyLookup;
  /** reservation lifetime before renewal */
  ttlSeconds: number;
}

/** Reservations through an API key (its credit limit applies too, DESIGN 5b) and each key's spend. */
export function apiKeysService(deps: ApiKeysDeps) {
  const { keys, accounts, lookup, ttlSeconds } = deps;

  /**
   * The key a reservation is made through: the `akid` of the caller's token, or the one the calling service names
   * (they must agree). Learned from auth on its first reservation (its limit never changes afterwards).
   */
  async function knownKey(actor: Actor, apiKeyId: string): Promise<KnownApiKey> {
    const stored = await keys.findApiKey(apiKeyId);
    const known = stored ?? (await lookup(apiKeyId));
    if (!known || known.userId !== actor.userId) throw new ApiError('FORBIDDEN', 'The API key is not this user’s');
    if (!stored) await keys.rememberApiKey(known);
    return known;
  }

  return {
    async initializeThroughKey(
      actor: Actor,
      input: { reservationId: string; sessionId: string; modelId: string; inputTokens: number; maxOutputTokens: number },
      apiKeyId: string,
    ): Promise<ReservationResponse> {
      const key = await knownKey(actor, apiKeyId);
      const row = await withRetry(() => keys.reserveThroughKey(actor, { ...input, ttlSeconds }, apiKeyId));
      // what the limit still allows, read after the reservation committed (a hint for the caller: others may reserve meanwhile)
      const apiKeyRemainingCredits = key.creditLimit === null ? null : Math.max(0, key.creditLimit - (await keys.keySpend(apiKeyId)));
      return { ...reservationView(row, ttlSeconds), apiKeyRemainingCredits };
    },

    /** Credits charged and held through each key of the owner; NOT_FOUND for a user accounting does not know. */
    async spend(ownerId: string): Promise<{ userId: string; apiKeys: ApiKeySpend[] }> {
      if (!(await accounts.findAccount(ownerId))) throw new ApiError('NOT_FOUND', 'Unknown user');
      return { userId: ownerId, apiKeys: await keys.spendOf(ownerId) };
    },
  };
}

export type ApiKeysService = ReturnType<typeof apiKeysService>;
