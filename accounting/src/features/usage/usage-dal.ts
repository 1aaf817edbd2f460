import { type Db, iso, num } from '../../db.ts';

export interface UsageInput {
  userId: string;
  modelId: string;
  sessionId?: string;
  reservationId?: string;
  inputTokens: number;
  outputTokens: number;
  credits: number;
}

/** Records usage; a reservation's usage is recorded once however often it is reported (finalize records it too). */
export async function recordUsage(db: Db, input: UsageInput): Promise<{ id: string; created: boolean }> {
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

/** Usage of one user in [from, to), summed overall, per UTC day and per model. */
export async function usageStats(db: Db, userId: string, from: Date, to: Date) {
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
}
