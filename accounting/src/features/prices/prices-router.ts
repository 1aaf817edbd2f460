import { ApiError, internalPricesResponse, modelPriceView, registerModelPriceBody } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { credits, modelId } from '../../schemas.ts';
import { listPrices, registerPrice, updatePrice } from './prices-dal.ts';

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
      async ({ actor, userToken }) => {
        await authorizeOn(ctx, userToken, actor, 'prices:read', actor.userId);
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
      async ({ actor, userToken, params, body }) => {
        await authorizeOn(ctx, userToken, actor, 'prices:update', actor.userId);
        const price = await updatePrice(ctx.db, params.modelId, body, actor.userId);
        if (!price) throw new ApiError('NOT_FOUND', `Unknown model ${params.modelId}`);
        return price;
      },
    )
    .route(
      {
        method: 'get',
        path: '/internal/models/prices',
        summary: 'Prices of every model (service-only; chat lists models with them and refuses models without one)',
        ...internalRoute(),
        response: internalPricesResponse,
      },
      async () => ({ prices: (await listPrices(ctx.db)).map(({ modelId, inputPer1k, outputPer1k }) => ({ modelId, inputPer1k, outputPer1k })) }),
    )
    .route(
      {
        method: 'put',
        path: '/internal/models/prices/:modelId',
        summary: 'Learn a model chat added at runtime with its first prices; a price already held is kept (service-only)',
        ...internalRoute(),
        params: z.object({ modelId }),
        body: registerModelPriceBody.strict(),
        response: modelPriceView,
      },
      async ({ params, body }) => {
        const { modelId: id, inputPer1k, outputPer1k } = await registerPrice(ctx.db, params.modelId, body);
        return { modelId: id, inputPer1k, outputPer1k };
      },
    );
}
