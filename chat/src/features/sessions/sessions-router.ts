import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import type { ModelRegistry } from '../../llm-catalog/model-registry.ts';
import { messageView, type SessionsService, sessionView } from './sessions-service.ts';

const idParams = z.object({ id: z.string().min(1).max(64) }).strict();
const title = z.string().trim().min(1).max(200);
const modelId = z.string().min(1).max(64);
const sessionSchema = z
  .object({ id: z.string(), userId: z.string(), modelId: z.string(), title: z.string(), createdAt: z.string(), updatedAt: z.string() })
  .meta({ id: 'ChatSession' });
const messageSchema = z.object({
  id: z.string(),
  sessionId: z.string(),
  role: z.enum(['user', 'assistant', 'supervisor']),
  content: z.string(),
  status: z.enum(['complete', 'interrupted', 'error']),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }).optional(),
  credits: z.number().optional(),
  chargePending: z.boolean().optional(),
  modelId: z.string().optional(),
  authorId: z.string().optional(),
  fileIds: z.array(z.string()).optional(),
  createdAt: z.string(),
});
const modelSchema = z.object({
  id: z.string(),
  displayName: z.string(),
  provider: z.string(),
  defaultMaxOutputTokens: z.number(),
  maxOutputTokens: z.number(),
  contextTokens: z.number(),
  prices: z.object({ inputPer1k: z.number(), outputPer1k: z.number() }),
});

export function sessionsRouter(deps: { sessions: SessionsService; models: ModelRegistry }): ApiRouter {
  const { sessions, models } = deps;
  const tags = ['chat'];
  return new ApiRouter()
    .route(
      {
        method: 'get',
        path: '/api/chat/models',
        summary: 'Models the caller may use',
        access: 'user',
        tags,
        response: z.object({ models: z.array(modelSchema) }),
      },
      async ({ actor }) => {
        await models.refresh();
        return {
          models: models.listFor(actor).map((m) => ({
            id: m.id,
            displayName: m.displayName,
            provider: m.provider,
            defaultMaxOutputTokens: m.defaultMaxOutputTokens,
            maxOutputTokens: m.maxOutputTokens,
            contextTokens: m.contextTokens,
            prices: m.prices,
          })),
        };
      },
    )
    .route(
      {
        method: 'post',
        path: '/api/chat/sessions',
        summary: 'Start a chat session',
        access: 'user',
        tags,
        body: z
          .object({ modelId, title: title.optional() })
          .strict()
          .meta({ id: 'CreateChatSessionRequest', examples: [{ modelId: 'local-dev', title: 'Biology homework' }] }),
        status: 201,
        response: z.object({ session: sessionSchema }),
        errors: ['NOT_FOUND', 'FORBIDDEN'],
      },
      async ({ actor, body }) => ({ session: sessionView(await sessions.create(actor, body)) }),
    )
    .route(
      {
        method: 'get',
        path: '/api/chat/sessions',
        summary: 'Own sessions, newest first',
        access: 'user',
        tags,
        query: z.object({ page: z.coerce.number().int().min(1).max(100_000).default(1), limit: z.coerce.number().int().min(1).max(100).default(20) }).strict(),
        response: z.object({ sessions: z.array(sessionSchema), page: z.number(), limit: z.number(), total: z.number() }),
      },
      async ({ actor, query }) => {
        const { items, total } = await sessions.dal.listSessions(actor.userId, query.page, query.limit);
        return { sessions: items.map(sessionView), page: query.page, limit: query.limit, total };
      },
    )
    .route(
      {
        method: 'get',
        path: '/api/chat/sessions/:id',
        summary: 'A session with its messages',
        access: 'user',
        tags,
        params: idParams,
        response: z.object({ session: sessionSchema, messages: z.array(messageSchema) }),
        errors: ['NOT_FOUND'],
      },
      async ({ actor, params }) => {
        const { session, messages } = await sessions.withMessages(actor, params.id);
        return { session: sessionView(session), messages: messages.map(messageView) };
      },
    )
    .route(
      {
        method: 'patch',
        path: '/api/chat/sessions/:id',
        summary: 'Rename a session (or switch its model)',
        access: 'user',
        tags,
        params: idParams,
        body: z
          .object({ title: title.optional(), modelId: modelId.optional() })
          .strict()
          .refine((b) => b.title !== undefined || b.modelId !== undefined, 'Give title or modelId'),
        response: z.object({ session: sessionSchema }),
        errors: ['NOT_FOUND', 'FORBIDDEN'],
      },
      async ({ actor, params, body }) => ({ session: sessionView(await sessions.rename(actor, params.id, body)) }),
    )
    .route(
      {
        method: 'delete',
        path: '/api/chat/sessions/:id',
        summary: 'Delete a session and its messages',
        access: 'user',
        tags,
        params: idParams,
        errors: ['NOT_FOUND', 'CONFLICT'],
      },
      async ({ actor, params }) => {
        await sessions.remove(actor, params.id);
      },
    );
}
