import { type Actor, ApiError } from '@platform/shared-types';
import type { ModelRegistry } from '../../llm-catalog/model-registry.ts';
import type { SessionsService } from '../sessions/sessions-service.ts';
import type { StreamSink } from '../stream/sse.ts';
import type { StreamService } from '../stream/stream-service.ts';

export interface PredictInput {
  /** a catalog model id, or a Flowise model's chatflow id */
  chatflowId: string;
  question: string;
  /** continues this own session (of the same chatflow) instead of opening a new one */
  sessionId?: string;
}

export interface PredictDeps {
  streams: Pick<StreamService, 'run'>;
  sessions: Pick<SessionsService, 'own' | 'create'>;
  models: Pick<ModelRegistry, 'refresh' | 'findForChatflow' | 'require'>;
}

/** Flowise-compatible predictions: a question to a chatflow, answered and metered like any chat stream. */
export function predictService(deps: PredictDeps) {
  const { streams, sessions, models } = deps;

  /** The session the question goes to: NOT_FOUND for an unknown chatflow, FORBIDDEN for one the caller may not use. */
  async function sessionFor(actor: Actor, input: PredictInput): Promise<string> {
    await models.refresh();
    const model = models.findForChatflow(input.chatflowId);
    if (!model) throw new ApiError('NOT_FOUND', `Unknown chatflow ${input.chatflowId}`);
    models.require(actor, model.id);
    if (!input.sessionId) return (await sessions.create(actor, { modelId: model.id }))._id.toHexString();
    const session = await sessions.own(actor, input.sessionId);
    if (session.modelId !== model.id) throw new ApiError('CONFLICT', 'That session uses another chatflow');
    return session._id.toHexString();
  }

  return {
    /** Streams the reply to `sink` (Flowise SSE, or collected for a JSON answer); answers the session it went to. */
    async predict(actor: Actor, userToken: string | undefined, input: PredictInput, sink: StreamSink): Promise<string> {
      const sessionId = await sessionFor(actor, input);
      await streams.run({ actor, userToken, sessionId, message: input.question, sink });
      return sessionId;
    },
  };
}

export type PredictService = ReturnType<typeof predictService>;
