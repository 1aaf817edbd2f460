import { ApiError, recordUsageBody } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { withRetry } from '../../db.ts';
import { userId } from '../../schemas.ts';
import { findAccount } from '../accounts/accounts-dal.ts';
import { findPrice } from '../prices/prices-dal.ts';
import { recordUsage, usageStats } from './usage-dal.ts';

const DAY_MS = 86_400_000;
const instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));
const bucket = { requests: z.number(), inputTokens: z.number(), outputTokens: z.number(), credits: z.number() };

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
      async ({ actor, query, req }) => {
        const owner = query.userId ?? actor.userId;
        await authorizeOn(ctx, req, actor, 'usage:read', owner);
        const to = query.to ?? new Date();
        const from = query.from ?? new Date(to.getTime() - 30 * DAY_MS);
        if (from >= to || to.getTime() - from.getTime() > 366 * DAY_MS) {
          throw new ApiError('VALIDATION_FAILED', 'from must be before to, at most 366 days apart', { errors: [{ path: 'query.from', message: 'bad range' }] });
        }
        if (!(await findAccount(ctx.db, owner))) throw new ApiError('NOT_FOUND', 'Unknown user');
        return usageStats(ctx.db, owner, from, to);
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
