import { recordUsageBody } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { userId } from '../../schemas.ts';
import type { UsageService } from './usage-service.ts';

const instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));
const bucket = { requests: z.number(), inputTokens: z.number(), outputTokens: z.number(), credits: z.number() };

export function usageRouter(ctx: AccountingContext, usage: UsageService): ApiRouter {
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
        return usage.stats(owner, query);
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
        const { csv, filename } = await usage.exportCsv(query, owner);
        res.status(200).type('text/csv; charset=utf-8').setHeader('content-disposition', `attachment; filename="${filename}"`);
        res.end(csv);
        return undefined;
      },
    )
    .route(
      {
        method: 'post',
        path: '/internal/usage/record',
        summary: 'Record usage that was not reserved (service-only); a reservation is recorded once',
        ...internalRoute(),
        body: recordUsageBody.strict(),
        status: 201,
        response: z.object({ usageId: z.string(), recorded: z.boolean() }),
        errors: ['NOT_FOUND'],
      },
      ({ body }) => usage.record(body),
    );
}
