import { setTimeout as delay } from 'node:timers/promises';
import { ApiError } from '@platform/shared-types';
import type { Knex } from 'knex';

/** A knex handle or an open transaction: every DAL function takes either. */
export type Db = Knex | Knex.Transaction;

interface PgError {
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
  constraint?: string;
}

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock detected
const MAX_ATTEMPTS = 6;

function pgError(error: unknown): PgError | undefined {
  return error && typeof error === 'object' && 'code' in error ? (error as PgError) : undefined;
}

/** Runs `work` again (with jittered backoff) when PostgreSQL reports a serialization failure or a deadlock. */
export async function withRetry<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const code = pgError(error)?.code;
      if (!code || !RETRYABLE.has(code) || attempt >= MAX_ATTEMPTS) throw mapPgError(error);
      await delay(Math.random() * 5 * 2 ** attempt);
    }
  }
}

/** Our money functions raise P0402/P0403/P0404/P0409 (see migrations/003); those become problem codes. */
export function mapPgError(error: unknown): unknown {
  const pg = pgError(error);
  if (!pg?.code) return error;
  const message = pg.message?.split(' - ').pop() ?? '';
  switch (pg.code) {
    case 'P0402': {
      const available = Number(pg.detail);
      if (pg.hint === 'api-key-limit') {
        return new ApiError('INSUFFICIENT_CREDITS', "The API key's credit limit is reached", {
          extensions: Number.isFinite(available) ? { apiKeyRemainingCredits: available } : undefined,
        });
      }
      return new ApiError('INSUFFICIENT_CREDITS', 'Not enough credits', {
        extensions: Number.isFinite(available) ? { availableCredits: available } : undefined,
      });
    }
    case 'P0403':
      return new ApiError('FORBIDDEN', message);
    case 'P0404':
      return new ApiError('NOT_FOUND', `Unknown ${message}`);
    case 'P0409':
      return new ApiError('CONFLICT', message);
    case '23505': // unique violation, e.g. a reservation id reused by another user
      return new ApiError('CONFLICT', 'Already exists');
    case '23503': // foreign key violation: the user has no account
      return new ApiError('NOT_FOUND', 'Unknown user');
    default:
      return error;
  }
}

interface PgConnection {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/**
 * Runs one named (prepared) statement on a connection of the knex pool, without knex's query building: the
 * hot money calls (reserve, settle) spend less CPU in this process, and the server plans each statement once
 * per connection. `text` uses $1..$n placeholders. A transaction handle runs it through knex instead (same SQL).
 */
export async function preparedRows<T>(db: Db, name: string, text: string, values: unknown[]): Promise<T[]> {
  if ('isTransaction' in db && db.isTransaction) {
    const { rows } = await db.raw(text.replace(/\$\d+/g, '?'), values as Knex.RawBinding[]);
    return rows as T[];
  }
  const connection = (await db.client.acquireConnection()) as PgConnection;
  try {
    const { rows } = await connection.query({ name, text, values });
    return rows as T[];
  } finally {
    await db.client.releaseConnection(connection);
  }
}

/** pg returns bigint columns as strings; our amounts are far below 2^53. */
export const num = (value: unknown): number => Number(value ?? 0);
export const iso = (value: unknown): string | null => (value === null || value === undefined ? null : new Date(value as string).toISOString());
