import { ApiError } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import type { ModelRegistry } from '../../llm-catalog/model-registry.ts';
import type { SessionDoc } from '../sessions/sessions-dal.ts';
import type { SessionsService } from '../sessions/sessions-service.ts';
import { CollectingSink, FlowiseSseSink } from '../stream/sse.ts';
import { collectedReply } from '../stream/stream-router.ts';
import type { StreamService } from '../stream/stream-service.ts';

/**
 * `POST /api/v1/chat/predict` for clients of the old Flowise proxy: a chatflow id (a catalog model id, or a Flowise
 * model's chatflow id) and a question; the reply is metered like any other. `session_id` continues an own session.
 */
export function predictRouter(deps: { streams: StreamService; sessions: SessionsService; models: ModelRegistry; maxMessageChars: number }): ApiRouter {
  const { streams, sessions, models } = deps;
  return new ApiRouter().route(
    {
      method: 'post',
      path: '/api/v1/chat/predict',
      summary: 'Flowise-compatible prediction (JSON reply, or Flowise-style SSE events start/token/metadata/end with streaming: true)',
      access: 'user',
      tags: ['flowise'],
      body: z
        .object({
          chatflow_id: z.string().min(1).max(128),
          question: z.string().trim().min(1).max(deps.maxMessageChars),
          session_id: z.string().min(1).max(64).optional(),
          streaming: z.boolean().optional(),
        })
        .strict(),
      response: z.object({
        text: z.string(),
        question: z.string(),
        chatId: z.string(),
        sessionId: z.string(),
        chatMessageId: z.string(),
        usage: z.unknown(),
        credits: z.number().optional(),
        chargePending: z.boolean().optional(),
      }),
      errors: ['NOT_FOUND', 'FORBIDDEN', 'CONFLICT', 'INSUFFICIENT_CREDITS', 'UPSTREAM_UNAVAILABLE'],
    },
    async ({ actor, userToken, body, res }) => {
      await models.refresh();
      const model = models.findForChatflow(body.chatflow_id);
      if (!model) throw new ApiError('NOT_FOUND', `Unknown chatflow ${body.chatflow_id}`);
      models.require(actor, model.id);
      let session: SessionDoc | undefined;
      if (body.session_id) {
        session = await sessions.own(actor, body.session_id);
        if (session.modelId !== model.id) throw new ApiError('CONFLICT', 'That session uses another chatflow');
      } else session = await sessions.create(actor, { modelId: model.id });
      const sessionId = session._id.toHexString();
      if (body.streaming) {
        await streams.run({ actor, userToken, sessionId, message: body.question, sink: new FlowiseSseSink(res) });
        return undefined;
      }
      const sink = new CollectingSink();
      res.on('close', () => {
        if (!res.writableFinished) sink.close();
      });
      await streams.run({ actor, userToken, sessionId, message: body.question, sink });
      const reply = collectedReply(sink);
      return {
        text: reply.content,
        question: body.question,
        chatId: sessionId,
        sessionId,
        chatMessageId: reply.messageId,
        usage: reply.usage,
        credits: reply.credits,
        chargePending: reply.chargePending,
      };
    },
  );
}
