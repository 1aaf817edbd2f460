import { ApiError } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import type { AccountingContext } from '../../context.ts';
import { reconcile } from './reconcile-service.ts';

const instant = z.union([z.iso.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));
const DAY_MS = 86_400_000;

export function reconcileRouter(ctx: AccountingContext): ApiRouter {
  return new ApiRouter().route(
    {
      method: 'get',
      path: '/api/credits/reconcile',
      summary: 'Differences between reservations, usage and the ledger for reservations made in [from, to) (admin; default: the last day)',
      tags: ['credits'],
      access: 'user',
      query: z.object({ from: instant.optional(), to: instant.optional() }).strict(),
      response: z.object({
        from: z.string(),
        to: z.string(),
        differences: z.array(
          z.object({ kind: z.enum(['ledger', 'reservation']), userId: z.string(), reservationId: z.string().optional(), problem: z.string() }),
        ),
      }),
      errors: ['FORBIDDEN'],
    },
    async ({ actor, query }) => {
      if (actor.role !== 'admin') throw new ApiError('FORBIDDEN', 'Only admins reconcile');
      const to = query.to ?? new Date();
      const from = query.from ?? new Date(to.getTime() - DAY_MS);
      if (from >= to) throw new ApiError('VALIDATION_FAILED', 'from must be before to', { errors: [{ path: 'query.from', message: 'bad range' }] });
      return { from: from.toISOString(), to: to.toISOString(), differences: await reconcile(ctx.db, from, to) };
    },
  );
}
