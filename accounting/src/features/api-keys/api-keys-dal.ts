import type { Actor } from '@platform/shared-types';
import type { Knex } from 'knex';
import { num, preparedRows } from '../../db.ts';
import { type ReserveInput, reserveArguments, type Settled } from '../reservations/reservations-dal.ts';

export interface KnownApiKey {
  id: string;
  userId: string;
  creditLimit: number | null;
}

/** API keys accounting has seen (owner, limit) and their spend. Every function runs on `knex`, or inside `trx` when one is given. */
export function apiKeysDal(knex: Knex) {
  return {
    async findApiKey(id: string, trx?: Knex.Transaction): Promise<KnownApiKey | undefined> {
      const db = trx ?? knex;
      const row = await db('api_keys').where({ id }).first();
      return row ? { id: row.id, userId: row.user_id, creditLimit: row.credit_limit === null ? null : num(row.credit_limit) } : undefined;
    },

    /** A key's owner and limit never change, so the first writer wins and every later one finds the same row. */
    async rememberApiKey(key: KnownApiKey, trx?: Knex.Transaction): Promise<void> {
      const db = trx ?? knex;
      await db('api_keys').insert({ id: key.id, user_id: key.userId, credit_limit: key.creditLimit }).onConflict('id').ignore();
    },

    /** acc_reserve_key: the key's limit checked and the reservation made in one transaction (migration 006). */
    async reserveThroughKey(actor: Actor, input: ReserveInput, apiKeyId: string, trx?: Knex.Transaction): Promise<Settled> {
      const db = trx ?? knex;
      const rows = await preparedRows<Settled>(
        db,
        'acc_reserve_key',
        'SELECT (r.reservation).*, r.available_after FROM acc_reserve_key($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) r',
        [...reserveArguments(actor, input), apiKeyId],
      );
      return rows[0] as Settled;
    },

    /** credits a key has used (acc_key_spend: the hold of its open reservations, the charge of settled ones) */
    async keySpend(apiKeyId: string, trx?: Knex.Transaction): Promise<number> {
      const rows = await preparedRows<{ spent: string }>(trx ?? knex, 'acc_key_spend', 'SELECT acc_key_spend($1) AS spent', [apiKeyId]);
      return num(rows[0]?.spent ?? 0);
    },

    async spendOf(userId: string, trx?: Knex.Transaction): Promise<ApiKeySpend[]> {
      const db = trx ?? knex;
      const rows = await db('api_keys as k')
        .leftJoin('reservations as r', 'r.api_key_id', 'k.id')
        .where('k.user_id', userId)
        .groupBy('k.id', 'k.credit_limit', 'k.created_at')
        .orderBy('k.created_at', 'asc')
        .select(
          'k.id',
          'k.credit_limit',
          db.raw("coalesce(sum(CASE WHEN r.status = 'open' THEN 0 ELSE r.charged END), 0) AS charged"),
          db.raw("coalesce(sum(CASE WHEN r.status = 'open' THEN greatest(r.reserved, r.charged) ELSE 0 END), 0) AS held"),
        );
      return rows.map((row: Record<string, unknown>) => {
        const limit = row.credit_limit === null ? null : num(row.credit_limit);
        const charged = num(row.charged);
        const held = num(row.held);
        return {
          apiKeyId: String(row.id),
          creditLimit: limit,
          chargedCredits: charged,
          heldCredits: held,
          ...(limit === null ? {} : { remainingCredits: Math.max(0, limit - charged - held) }),
        };
      });
    },
  };
}

export type ApiKeysDal = ReturnType<typeof apiKeysDal>;

export interface ApiKeySpend {
  apiKeyId: string;
  creditLimit: number | null;
  /** charged by settled reservations */
  chargedCredits: number;
  /** held by open reservations */
  heldCredits: number;
  /** what the limit still allows (absent without a limit) */
  remainingCredits?: number;
}
