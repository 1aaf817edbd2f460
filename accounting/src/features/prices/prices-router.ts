import { internalPricesResponse, modelPriceView, registerModelPriceBody } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { credits, modelId } from '../../schemas.ts';
import type { PricesService } from './prices-service.ts';

const priceSchema = z.object({
  modelId: z.string(),
  displayName: z.string(),
  inputPer1k: z.number().int(),
  outputPer1k: z.number().int(),
  updatedBy: z.string().nullable(),
  updatedAt: z.string(),
});

export function pricesRouter(ctx: AccountingContext, prices: PricesService): ApiRouter {
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
        return { prices: await prices.list() };
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
        return prices.update(params.modelId, body, actor.userId);
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
      async () => ({ prices: await prices.listForServices() }),
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
      ({ params, body }) => prices.register(params.modelId, body),
    );
}
