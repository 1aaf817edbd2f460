import { modelEntry, ROLES } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import type { CatalogService } from './catalog-service.ts';

const prices = z.object({ inputPer1k: z.number().int().min(1).max(1_000_000_000), outputPer1k: z.number().int().min(1).max(1_000_000_000) }).strict();
const tokenLimit = z.number().int().min(1).max(10_000_000);
const access = z
  .object({ public: z.boolean().optional(), roles: z.array(z.enum(ROLES)).max(3).optional(), users: z.array(z.string().min(1).max(64)).max(10_000).optional() })
  .strict();
const upstreamModel = z.string().min(1).max(500);
const displayName = z.string().trim().min(1).max(200);

const newModelBody = z
  .object({
    id: modelEntry.shape.id,
    displayName,
    provider: modelEntry.shape.provider,
    upstreamModel,
    defaultMaxOutputTokens: tokenLimit,
    maxOutputTokens: tokenLimit,
    contextTokens: tokenLimit,
    access: access.optional(),
    enabled: z.boolean().optional(),
    prices: prices.optional(),
  })
  .strict();
const modelPatchBody = z
  .object({
    displayName: displayName.optional(),
    provider: modelEntry.shape.provider.optional(),
    upstreamModel: upstreamModel.optional(),
    defaultMaxOutputTokens: tokenLimit.optional(),
    maxOutputTokens: tokenLimit.optional(),
    contextTokens: tokenLimit.optional(),
    access: access.optional(),
    enabled: z.boolean().optional(),
    /** first prices of a model accounting has none for yet; later changes go through PUT /api/models/prices/:modelId */
    prices: prices.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'Give at least one field');
const chatflowPatchBody = z
  .object({
    isPublic: z.boolean().optional(),
    allowedUsers: z.array(z.string().min(1).max(64)).max(10_000).optional(),
    allowedRoles: z.array(z.enum(ROLES)).max(3).optional(),
    displayName: displayName.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'Give at least one field');

const pricesView = z.object({ inputPer1k: z.number(), outputPer1k: z.number() }).nullable();
const modelAdminSchema = z.object({
  id: z.string(),
  displayName: z.string(),
  provider: z.string(),
  upstreamModel: z.string(),
  defaultMaxOutputTokens: z.number(),
  maxOutputTokens: z.number(),
  contextTokens: z.number(),
  access: z.object({ public: z.boolean().optional(), roles: z.array(z.string()).optional(), users: z.array(z.string()).optional() }),
  enabled: z.boolean(),
  origin: z.enum(['catalog', 'admin']),
  configured: z.boolean(),
  prices: pricesView,
  createdAt: z.string(),
  updatedAt: z.string(),
  updatedBy: z.string().optional(),
});
const chatflowSchema = z.object({
  id: z.string(),
  modelId: z.string(),
  name: z.string(),
  displayName: z.string(),
  deployed: z.boolean(),
  available: z.boolean(),
  lastSeenAt: z.string(),
  isPublic: z.boolean(),
  allowedUsers: z.array(z.string()),
  allowedRoles: z.array(z.string()),
  prices: pricesView,
});
const modelList = z.object({ models: z.array(modelAdminSchema) });
const chatflowList = z.object({ chatflows: z.array(chatflowSchema) });
const syncReportSchema = z.object({
  added: z.array(z.object({ id: z.string(), name: z.string() })),
  renamed: z.array(z.object({ id: z.string(), from: z.string(), to: z.string() })),
  retired: z.array(z.string()),
  restored: z.array(z.string()),
  unchanged: z.number(),
  syncedAt: z.string(),
});

/** Admin management of models and Flowise chatflows (DESIGN 7; prices stay in accounting, DESIGN 8). */
export function catalogRouter(deps: { catalog: CatalogService }): ApiRouter {
  const { catalog } = deps;
  const tags = ['chat-admin'];
  const admin = { access: 'user', action: 'models:manage', tags } as const;
  return new ApiRouter()
    .route(
      {
        ...admin,
        method: 'get',
        path: '/api/chat/models/catalog',
        summary: 'Every model, enabled or not, with access and prices (admin)',
        response: modelList,
      },
      async () => ({ models: await catalog.listModels() }),
    )
    .route(
      {
        ...admin,
        method: 'post',
        path: '/api/chat/models',
        summary: 'Add a model at runtime (admin); its first prices go to accounting, which keeps a price it already holds',
        body: newModelBody,
        status: 201,
        response: modelAdminSchema,
        errors: ['CONFLICT'],
      },
      ({ actor, body }) => catalog.addModel(actor, body),
    )
    .route(
      {
        ...admin,
        method: 'patch',
        path: '/api/chat/models/:id',
        summary:
          'Change, disable or enable a model (admin); running streams finish and are charged. Prices only as the first ones of a model accounting has none for',
        params: z.object({ id: modelEntry.shape.id }).strict(),
        body: modelPatchBody,
        response: modelAdminSchema,
        errors: ['NOT_FOUND', 'CONFLICT'],
      },
      ({ actor, params, body }) => catalog.updateModel(actor, params.id, body),
    )
    .route(
      { ...admin, method: 'get', path: '/api/chat/chatflows', summary: 'Flowise chatflows with access lists and prices (admin)', response: chatflowList },
      async () => ({ chatflows: await catalog.listChatflows() }),
    )
    .route(
      {
        ...admin,
        method: 'post',
        path: '/api/chat/chatflows/sync',
        summary: "Read Flowise's chatflow list now and report what changed (admin); one sync at a time",
        response: syncReportSchema,
        errors: ['CONFLICT', 'UPSTREAM_UNAVAILABLE'],
      },
      () => catalog.syncChatflows(),
    )
    .route(
      {
        ...admin,
        method: 'patch',
        path: '/api/chat/chatflows/:id',
        summary: 'Open a chatflow, or change who may use it and its display name (admin)',
        params: z.object({ id: z.string().min(1).max(128) }).strict(),
        body: chatflowPatchBody,
        response: chatflowSchema,
        errors: ['NOT_FOUND'],
      },
      ({ params, body }) => catalog.updateChatflow(params.id, body),
    );
}
