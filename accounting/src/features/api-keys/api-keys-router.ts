import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { userId } from '../../schemas.ts';
import type { ApiKeysService } from './api-keys-service.ts';

const spendResponse = z.object({
  userId: z.string(),
  apiKeys: z.array(
    z.object({
      apiKeyId: z.string(),
      creditLimit: z.number().int().nullable(),
      chargedCredits: z.number().int(),
      heldCredits: z.number().int(),
      remainingCredits: z.number().int().optional(),
    }),
  ),
});

/** The spend of each API key that has reserved anything (keys never used have spent nothing and are not listed). */
export function apiKeysRouter(ctx: AccountingContext, apiKeys: ApiKeysService): ApiRouter {
  return new ApiRouter().route(
    {
      method: 'get',
      path: '/api/credits/api-keys',
      summary: 'Credits charged and held through each API key, with its limit (own; admin any; supervisor own students)',
      tags: ['credits'],
      access: 'user',
      query: z.strictObject({ userId: userId.optional() }),
      response: spendResponse,
      errors: ['FORBIDDEN', 'NOT_FOUND'],
    },
    async ({ actor, userToken, query }) => {
      const owner = query.userId ?? actor.userId;
      await authorizeOn(ctx, userToken, actor, 'credits:read', owner);
      return apiKeys.spend(owner);
    },
  );
}
