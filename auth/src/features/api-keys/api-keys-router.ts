import { internalApiKeyResponse } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import { z } from 'zod';
import type { ApiKeysService } from './api-keys-service.ts';

const objectId = z.string().regex(/^[0-9a-f]{24}$/, 'must be an id');
const ownerQuery = z.strictObject({ userId: objectId.optional() });
const createBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  expiresInDays: z.number().int().min(1).max(3650).optional(),
  creditLimit: z.number().int().min(0).max(1_000_000_000).optional(),
  /** admins: create the key for this user */
  userId: objectId.optional(),
});
const keyView = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().optional(),
  creditLimit: z.number().int().optional(),
  lastUsedAt: z.string().optional(),
});
const createdResponse = keyView.extend({ key: z.string().describe('the key itself: shown only in this answer') });
const listResponse = z.object({
  apiKeys: z.array(keyView),
  /** spend per key (credits charged and reserved through it) is kept by accounting */
  spend: z.string().describe('accounting route with each key’s spend'),
});

/** accounting's route with each key's spend, for the same user */
const spendRoute = (userId: string | undefined) => `/api/credits/api-keys${userId ? `?userId=${userId}` : ''}`;

export function apiKeysRouter(service: ApiKeysService): ApiRouter {
  const router = new ApiRouter();
  const tags = ['api-keys'];

  router.route(
    {
      method: 'post',
      path: '/api/auth/api-keys',
      summary: 'Create an API key (the key is shown only in this answer); admins may pass userId',
      access: 'user',
      tags,
      body: createBody,
      query: ownerQuery,
      status: 201,
      response: createdResponse,
      errors: ['FORBIDDEN', 'NOT_FOUND', 'CONFLICT'],
    },
    async ({ actor, body, query, res }) => {
      res.setHeader('cache-control', 'no-store');
      return service.create(actor, { ...body, userId: body.userId ?? query.userId });
    },
  );

  router.route(
    {
      method: 'get',
      path: '/api/auth/api-keys',
      summary: 'List API keys (own; admins any user via userId), with last-used time',
      access: 'user',
      tags,
      query: ownerQuery,
      response: listResponse,
      errors: ['FORBIDDEN', 'NOT_FOUND'],
    },
    async ({ actor, query }) => ({ apiKeys: await service.list(actor, query.userId), spend: spendRoute(query.userId) }),
  );

  router.route(
    {
      method: 'delete',
      path: '/api/auth/api-keys/:id',
      summary: 'Delete an API key: refused from the next request on',
      access: 'user',
      tags,
      params: z.strictObject({ id: objectId }),
      query: ownerQuery,
      errors: ['FORBIDDEN', 'NOT_FOUND'],
    },
    async ({ actor, params, query }) => {
      await service.remove(actor, params.id, query.userId);
    },
  );

  router.route(
    {
      method: 'get',
      path: '/internal/api-keys/:id',
      summary: 'Owner and credit limit of a key (accounting asks on the first reservation through it)',
      ...internalRoute(),
      params: z.strictObject({ id: objectId }),
      response: internalApiKeyResponse,
      errors: ['NOT_FOUND'],
    },
    ({ params }) => service.describe(params.id),
  );
  return router;
}
