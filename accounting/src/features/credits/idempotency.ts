import { createHash } from 'node:crypto';
import { ApiError } from '@platform/shared-types';
import type { Knex } from 'knex';
import { type Db, withRetry } from '../../db.ts';

export interface IdempotentResult<T> {
  status: number;
  body: T;
  replayed: boolean;
}

/** A stable hash of a request body: key order does not matter. */
export function requestHash(value: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex');
}

/**
 * Runs `work` in one transaction (retried on serialization failures). With an Idempotency-Key, the key is
 * claimed in that same transaction: a concurrent retry with the same key waits on the claim and then gets the
 * first response; the same key with a different body is a CONFLICT. A failed attempt leaves no key behind.
 */
export async function idempotent<T>(
  db: Knex,
  options: { scope: string; actorId: string; key: string | undefined; request: unknown; status: number },
  work: (trx: Knex.Transaction) => Promise<T>,
): Promise<IdempotentResult<T>> {
  const { key } = options;
  if (key === undefined) return { status: options.status, body: await withRetry(() => db.transaction(work)), replayed: false };
  const hash = requestHash(options.request);
  const where = { scope: options.scope, actor_id: options.actorId, key };
  return withRetry(() =>
    db.transaction(async (trx) => {
      const claimed = await trx('idempotency_keys')
        .insert({ ...where, request_hash: hash })
        .onConflict(['scope', 'actor_id', 'key'])
        .ignore()
        .returning('key');
      if (claimed.length === 0) {
        const first = await trx('idempotency_keys').where(where).first();
        if (!first || first.request_hash !== hash) throw new ApiError('CONFLICT', 'Idempotency-Key was already used with a different request');
        return { status: first.status_code as number, body: first.response as T, replayed: true };
      }
      const body = await work(trx);
      await trx('idempotency_keys')
        .where(where)
        .update({ status_code: options.status, response: JSON.stringify(body) });
      return { status: options.status, body, replayed: false };
    }),
  );
}

export async function forgetIdempotencyKeys(db: Db, olderThanHours: number): Promise<number> {
  return db('idempotency_keys')
    .where('created_at', '<', db.raw(`now() - make_interval(hours => ?)`, [olderThanHours]))
    .delete();
}
