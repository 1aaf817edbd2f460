import { type Actor, ApiError, internalApiKeyResponse, type ReservationResponse, type ServiceClient } from '@platform/shared-types';
import type { Knex } from 'knex';
import { withRetry } from '../../db.ts';
import { reservationView } from '../reservations/reservations-service.ts';
import { findApiKey, type KnownApiKey, keySpend, rememberApiKey, reserveThroughKey } from './api-keys-dal.ts';

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

/**
 * The key a reservation is made through: the `akid` of the caller's token, or the one the calling service names
 * (they must agree). Learned from auth on its first reservation (its limit never changes afterwards).
 */
async function knownKey(db: Knex, lookup: ApiKeyLookup, actor: Actor, apiKeyId: string): Promise<KnownApiKey> {
  const stored = await findApiKey(db, apiKeyId);
  const known = stored ?? (await lookup(apiKeyId));
  if (!known || known.userId !== actor.userId) throw new ApiError('FORBIDDEN', 'The API key is not this user’s');
  if (!stored) await rememberApiKey(db, known);
  return known;
}

export function reservationApiKey(actor: Actor, named: string | undefined): string | undefined {
  if (actor.apiKeyId && named && actor.apiKeyId !== named) throw new ApiError('FORBIDDEN', 'The API key named differs from the token’s');
  return actor.apiKeyId ?? named;
}

export async function initializeThroughKey(
  db: Knex,
  lookup: ApiKeyLookup,
  actor: Actor,
  input: { reservationId: string; sessionId: string; modelId: string; inputTokens: number; maxOutputTokens: number },
  apiKeyId: string,
  ttlSeconds: number,
): Promise<ReservationResponse> {
  const key = await knownKey(db, lookup, actor, apiKeyId);
  const row = await withRetry(() => reserveThroughKey(db, actor, { ...input, ttlSeconds }, apiKeyId));
  // what the limit still allows, read after the reservation committed (a hint for the caller: others may reserve meanwhile)
  const apiKeyRemainingCredits = key.creditLimit === null ? null : Math.max(0, key.creditLimit - (await keySpend(db, apiKeyId)));
  return { ...reservationView(row, ttlSeconds), apiKeyRemainingCredits };
}
