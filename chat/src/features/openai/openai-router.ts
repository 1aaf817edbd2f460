import { ApiRouter } from '@platform/shared-types/express';
import { completionRequestSchema, completionSchema, modelListSchema } from './openai-schema.ts';
import { OpenAiCollectingSink, type OpenAiService } from './openai-service.ts';
import { ChunkSseSink } from './openai-sinks.ts';

/** The OpenAI-compatible routes (DESIGN 7); their errors are answered in OpenAI's shape by the service app. */
export function openAiRouter(deps: { openai: OpenAiService; maxMessageChars: number }): ApiRouter {
  const { openai } = deps;
  const tags = ['openai'];
  return new ApiRouter()
    .route(
      { method: 'get', path: '/v1/models', summary: 'The models the caller may use (OpenAI list shape)', access: 'user', tags, response: modelListSchema },
      ({ actor }) => openai.listModels(actor),
    )
    .route(
      {
        method: 'post',
        path: '/v1/chat/completions',
        summary: 'OpenAI-compatible chat completion (chat.completion, or chat.completion.chunk SSE with stream: true); stored as a chat session of the caller',
        access: 'user',
        tags,
        body: completionRequestSchema(deps.maxMessageChars),
        response: completionSchema,
        errors: ['NOT_FOUND', 'INSUFFICIENT_CREDITS', 'RATE_LIMITED', 'UPSTREAM_UNAVAILABLE'],
      },
      async ({ actor, userToken, body, res }) => {
        const prepared = await openai.prepare(actor, body);
        const session = openai.newSession(actor, prepared);
        const sessionId = session.doc._id.toHexString();
        if (prepared.stream) {
          const sink = new ChunkSseSink(res, { model: prepared.model.id, sessionId, includeUsage: prepared.includeUsage });
          await openai.run({ actor, userToken, session, prepared, sink, opened: () => sink.opened });
          return undefined;
        }
        const sink = new OpenAiCollectingSink();
        res.on('close', () => {
          if (!res.writableFinished) sink.close();
        });
        await openai.run({ actor, userToken, session, prepared, sink, opened: () => sink.opened });
        res.setHeader('X-Session-Id', sessionId);
        return openai.completion(sink, prepared.model.id, sessionId);
      },
    );
}
