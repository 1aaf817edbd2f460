import { ApiError } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { credits, modelId } from '../../schemas.ts';
import { listPrices, updatePrice } from './prices-dal.ts';

const priceSchema = z.object({
  modelId: z.string(),
  displayName: z.string(),
  inputPer1k: z.number().int(),
  outputPer1k: z.number().int(),
  updatedBy: z.string().nullable(),
  updatedAt: z.string(),
});

export function pricesRouter(ctx: AccountingContext): ApiRouter {
  return new ApiRouter()
    .route(
      {
        method: 'get',
        path: '/api/models/prices',
        summary: 'Credits per 1,000 input and output tokens for every model',
        tags: ['prices'],
        access: 'user',
        response: z.object({ prices: z.array(priceSchema) }),
      },
      async ({ actor, req }) => {
        await authorizeOn(ctx, req, actor, 'prices:read', actor.userId);
        return { prices: await listPrices(ctx.db) };
      },
    )
    .route(
      {
        method: 'put',
        path: '/api/models/prices/:modelId',
        summary: "Change a model's prices (admin); applies to new reservations only",
        tags: ['prices'],
        access: 'user',
        params: z.object({ modelId }),
        body: z.object({ inputPer1k: credits, outputPer1k: credits }).strict(),
        response: priceSchema,
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      async ({ actor, params, body, req }) => {
        await authorizeOn(ctx, req, actor, 'prices:update', actor.userId);
        const price = await updatePrice(ctx.db, params.modelId, body, actor.userId);
        if (!price) throw new ApiError('NOT_FOUND', `Unknown model ${params.modelId}`);
        return price;
      },
    );
}
