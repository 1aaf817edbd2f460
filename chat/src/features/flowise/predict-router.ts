import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import { CollectingSink, FlowiseSseSink } from '../stream/sse.ts';
import { collectedReply } from '../stream/stream-router.ts';
import type { PredictService } from './predict-service.ts';

/**
 * `POST /api/v1/chat/predict` for clients of the old Flowise proxy: a chatflow id (a catalog model id, or a Flowise
 * model's chatflow id) and a question; the reply is metered like any other. `session_id` continues an own session.
 */
export function predictRouter(deps: { predict: PredictService; maxMessageChars: number }): ApiRouter {
  const { predict } = deps;
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
      const input = { chatflowId: body.chatflow_id, question: body.question, sessionId: body.session_id };
      if (body.streaming) {
        await predict.predict(actor, userToken, input, new FlowiseSseSink(res));
        return undefined;
      }
      const sink = new CollectingSink();
      res.on('close', () => {
        if (!res.writableFinished) sink.close();
      });
      const sessionId = await predict.predict(actor, userToken, input, sink);
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
