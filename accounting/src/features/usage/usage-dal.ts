import type { Knex } from 'knex';
import { iso, num } from '../../db.ts';

export interface UsageInput {
  userId: string;
  modelId: string;
  sessionId?: string;
  reservationId?: string;
  inputTokens: number;
  outputTokens: number;
  credits: number;
}

interface Bucket {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  credits: number;
}

const bucket = (row: Record<string, unknown>): Bucket => ({
  requests: num(row.requests),
  inputTokens: num(row.input_tokens),
  outputTokens: num(row.output_tokens),
  credits: num(row.credits),
});

/** Usage records and reports. Every function runs on `knex`, or inside `trx` when one is given. */
export function usageDal(knex: Knex) {
  return {
    /** Records usage; a reservation's usage is recorded once however often it is reported (finalize records it too). */
    async recordUsage(input: UsageInput, trx?: Knex.Transaction): Promise<{ id: string; created: boolean }> {
      const db = trx ?? knex;
      const row = {
        user_id: input.userId,
        model_id: input.modelId,
        session_id: input.sessionId ?? null,
        reservation_id: input.reservationId ?? null,
        input_tokens: input.inputTokens,
        output_tokens: input.outputTokens,
        credits: input.credits,
      };
      const inserted = input.reservationId
        ? await db('usage').insert(row).onConflict('reservation_id').ignore().returning('id')
        : await db('usage').insert(row).returning('id');
      if (inserted.length > 0) return { id: String(inserted[0].id), created: true };
      const existing = await db('usage').where({ reservation_id: input.reservationId }).first('id');
      return { id: String(existing.id), created: false };
    },

    /** Usage of one user in [from, to), summed overall, per UTC day and per model. */
    async usageStats(userId: string, from: Date, to: Date, trx?: Knex.Transaction) {
      const db = trx ?? knex;
      const scoped = () => db('usage').where({ user_id: userId }).andWhere('created_at', '>=', from).andWhere('created_at', '<', to);
      const sums = [
        db.raw('count(*) AS requests'),
        db.raw('coalesce(sum(input_tokens), 0) AS input_tokens'),
        db.raw('coalesce(sum(output_tokens), 0) AS output_tokens'),
        db.raw('coalesce(sum(credits), 0) AS credits'),
      ];
      const day = db.raw("to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
      const [totals, byDay, byModel] = await Promise.all([
        scoped().select(sums).first(),
        scoped()
          .select(db.raw(`${day.toString()} AS day`), ...sums)
          .groupByRaw('1')
          .orderByRaw('1'),
        scoped()
          .select('model_id', ...sums)
          .groupBy('model_id')
          .orderBy('model_id'),
      ]);
      return {
        userId,
        from: iso(from) as string,
        to: iso(to) as string,
        totals: bucket(totals),
        byDay: byDay.map((row: Record<string, unknown>) => ({ day: String(row.day), ...bucket(row) })),
        byModel: byModel.map((row: Record<string, unknown>) => ({ modelId: String(row.model_id), ...bucket(row) })),
      };
    },

    /** Usage per UTC day, user and model in [from, to), for one user or (userId undefined) everyone. */
    async usageExport(from: Date, to: Date, userId?: string, trx?: Knex.Transaction): Promise<UsageExportRow[]> {
      const db = trx ?? knex;
      const query = db('usage as u')
        .join('accounts as a', 'a.user_id', 'u.user_id')
        .where('u.created_at', '>=', from)
        .andWhere('u.created_at', '<', to)
        .groupByRaw("to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), u.user_id, a.username, u.model_id")
        .orderByRaw('1, 2, 4')
        .select(
          db.raw("to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day"),
          'u.user_id',
          'a.username',
          'u.model_id',
          db.raw('count(*) AS requests'),
          db.raw('sum(u.input_tokens) AS input_tokens'),
          db.raw('sum(u.output_tokens) AS output_tokens'),
          db.raw('sum(u.credits) AS credits'),
          db.raw('sum(u.shortfall) AS shortfall'),
        );
      if (userId) query.andWhere('u.user_id', userId);
      return query;
    },
  };
}

export type UsageDal = ReturnType<typeof usageDal>;

export interface UsageExportRow {
  day: string;
  user_id: string;
  username: string;
  model_id: string;
  requests: string;
  input_tokens: string;
  output_tokens: string;
  credits: string;
  shortfall: string;
}
