import { ApiError, recordUsageBody } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { withRetry } from '../../db.ts';
import { userId } from '../../schemas.ts';
import { findAccount } from '../accounts/accounts-dal.ts';
import { findPrice } from '../prices/prices-dal.ts';
import { recordUsage, type UsageExportRow, usageExport, usageStats } from './usage-dal.ts';

const DAY_MS = 86_400_000;
const instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));
const bucket = { requests: z.number(), inputTokens: z.number(), outputTokens: z.number(), credits: z.number() };

const EXPORT_COLUMNS = ['day', 'user_id', 'username', 'model_id', 'requests', 'input_tokens', 'output_tokens', 'credits', 'shortfall'] as const;

/** One CSV field (RFC 4180 quoting); a text starting like a formula is prefixed so spreadsheets show it as text. */
function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function toCsv(rows: UsageExportRow[]): string {
  const header = [...EXPORT_COLUMNS.slice(0, 8), 'shortfall_credits'].join(',');
  return `${[header, ...rows.map((row) => EXPORT_COLUMNS.map((column) => csvField(String(row[column]))).join(','))].join('\r\n')}\r\n`;
}

/** [from, to) with the defaults and bounds of the usage routes (the last 30 days; at most 366 days). */
function usageRange(query: { from?: Date; to?: Date }): { from: Date; to: Date } {
  const to = query.to ?? new Date();
  const from = query.from ?? new Date(to.getTime() - 30 * DAY_MS);
  if (from >= to || to.getTime() - from.getTime() > 366 * DAY_MS) {
    throw new ApiError('VALIDATION_FAILED', 'from must be before to, at most 366 days apart', { errors: [{ path: 'query.from', message: 'bad range' }] });
  }
  return { from, to };
}

export function usageRouter(ctx: AccountingContext): ApiRouter {
  return new ApiRouter()
    .route(
      {
        method: 'get',
        path: '/api/usage/stats',
        summary: 'Usage by UTC day and by model in [from, to) (default: the last 30 days; own; admin any; supervisor own students)',
        tags: ['usage'],
        access: 'user',
        query: z.object({ userId: userId.optional(), from: instant.optional(), to: instant.optional() }).strict(),
        response: z.object({
          userId: z.string(),
          from: z.string(),
          to: z.string(),
          totals: z.object(bucket),
          byDay: z.array(z.object({ day: z.string(), ...bucket })),
          byModel: z.array(z.object({ modelId: z.string(), ...bucket })),
        }),
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      async ({ actor, userToken, query }) => {
        const owner = query.userId ?? actor.userId;
        await authorizeOn(ctx, userToken, actor, 'usage:read', owner);
        const { from, to } = usageRange(query);
        if (!(await findAccount(ctx.db, owner))) throw new ApiError('NOT_FOUND', 'Unknown user');
        return usageStats(ctx.db, owner, from, to);
      },
    )
    .route(
      {
        method: 'get',
        path: '/api/usage/export',
        summary:
          'Usage as CSV per UTC day, user and model in [from, to): tokens in and out, credits charged and short (admin: everyone, or userId; others: own, or a supervised student)',
        tags: ['usage'],
        access: 'user',
        query: z.object({ userId: userId.optional(), from: instant.optional(), to: instant.optional() }).strict(),
        produces: 'text/csv',
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      async ({ actor, userToken, query, res }) => {
        // an admin without userId exports everyone; anyone else exports one user they may read
        const owner = query.userId ?? (actor.role === 'admin' ? undefined : actor.userId);
        if (owner) await authorizeOn(ctx, userToken, actor, 'usage:read', owner);
        const { from, to } = usageRange(query);
        if (owner && !(await findAccount(ctx.db, owner))) throw new ApiError('NOT_FOUND', 'Unknown user');
        const rows = await usageExport(ctx.db, from, to, owner);
        res
          .status(200)
          .type('text/csv; charset=utf-8')
          .setHeader('content-disposition', `attachment; filename="usage-${from.toISOString().slice(0, 10)}-${to.toISOString().slice(0, 10)}.csv"`);
        res.end(toCsv(rows));
        return undefined;
      },
    )
    .route(
      {
        method: 'post',
        path: '/internal/usage/record',
        summary: 'Record usage that was not reserved (service-only); a reservation is recorded once',
        tags: ['internal'],
        access: 'service',
        body: recordUsageBody.strict(),
        status: 201,
        response: z.object({ usageId: z.string(), recorded: z.boolean() }),
        errors: ['NOT_FOUND'],
      },
      async ({ body }) => {
        if (!(await findPrice(ctx.db, body.modelId))) throw new ApiError('NOT_FOUND', `Unknown model ${body.modelId}`);
        const { id, created } = await withRetry(() => recordUsage(ctx.db, body));
        return { usageId: id, recorded: created };
      },
    );
}
