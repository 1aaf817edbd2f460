import { type Actor, ApiError, type Logger, type ModelEntry } from '@platform/shared-types';
import { Types } from 'mongoose';
import type { ModelRegistry } from '../../llm-catalog/model-registry.ts';
import type { ChatTurn, Sampling } from '../../providers/provider.ts';
import type { SessionDoc } from '../sessions/sessions-dal.ts';
import { type SessionsService, titleFrom } from '../sessions/sessions-service.ts';
import { CollectingSink, type StreamSink } from '../stream/sse.ts';
import { pendingWrite } from '../stream/stream-preparation.ts';
import type { StreamRequest, StreamService } from '../stream/stream-service.ts';
import type { CompletionRequest } from './openai-schema.ts';
import { completionId, finishReason, openAiUsage } from './openai-sinks.ts';

type NewSession = NonNullable<StreamRequest['newSession']>;

function invalid(message: string, param: string | null): ApiError {
  return new ApiError('VALIDATION_FAILED', message, { extensions: { param } });
}

/** The text of a message's content; anything but text parts is refused, naming the part. */
function textOf(content: CompletionRequest['messages'][number]['content'], param: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .map((part, index) => {
      if (part.type !== 'text' || typeof part.text !== 'string') {
        throw invalid(`Content parts of type ${part.type} are not supported: this API takes text only`, `${param}.${index}`);
      }
      return part.text;
    })
    .join('');
}

/** The caller's messages as turns: system (and developer) instructions, user and assistant text; the last must be the user's. */
export function conversation(messages: CompletionRequest['messages']): { context: ChatTurn[]; message: string; firstUserText: string } {
  const turns = messages.map((m, index): ChatTurn => {
    const param = `messages.${index}`;
    if (m.role === 'tool' || m.role === 'function') throw invalid('Tool and function messages are not supported', `${param}.role`);
    if (m.role !== 'system' && m.role !== 'developer' && m.role !== 'user' && m.role !== 'assistant') throw invalid(`Unknown role ${m.role}`, `${param}.role`);
    if ('tool_calls' in m && m.tool_calls !== undefined && m.tool_calls !== null) throw invalid('Tool calls are not supported', `${param}.tool_calls`);
    if ('audio' in m && m.audio !== undefined && m.audio !== null) throw invalid('Audio is not supported', `${param}.audio`);
    return { role: m.role === 'developer' ? 'system' : m.role, content: textOf(m.content, `${param}.content`) };
  });
  const last = turns.at(-1) as ChatTurn;
  if (last.role !== 'user') throw invalid('The last message must be a user message', `messages.${turns.length - 1}.role`);
  if (last.content.trim().length === 0) throw invalid('The last user message is empty', `messages.${turns.length - 1}.content`);
  const firstUser = turns.find((t) => t.role === 'user') as ChatTurn;
  return { context: turns.slice(0, -1), message: last.content, firstUserText: firstUser.content };
}

export interface PreparedCompletion {
  model: ModelEntry;
  context: ChatTurn[];
  message: string;
  title: string;
  maxOutputTokens: number | undefined;
  sampling: Sampling;
  stream: boolean;
  includeUsage: boolean;
}

/**
 * The OpenAI-compatible API over the one stream pipeline: a completion is a new chat session of the caller,
 * run (reserved, streamed, charged, supervised) by StreamService exactly like a chat message.
 */
export class OpenAiService {
  readonly #models: ModelRegistry;
  readonly #sessions: SessionsService;
  readonly #streams: StreamService;
  readonly #logger: Logger;

  constructor(deps: { models: ModelRegistry; sessions: SessionsService; streams: StreamService; logger: Logger }) {
    this.#models = deps.models;
    this.#sessions = deps.sessions;
    this.#streams = deps.streams;
    this.#logger = deps.logger;
  }

  /** the models the caller may use, in OpenAI's list shape (ids as in /api/chat/models); an admin's change holds at once */
  async listModels(actor: Actor) {
    await this.#models.refresh();
    return {
      object: 'list' as const,
      data: this.#models.listFor(actor).map((m) => ({ id: m.id, object: 'model' as const, created: 0, owned_by: m.provider })),
    };
  }

  /** an unknown model and one the caller may not use look the same (OpenAI: "does not exist or you do not have access") */
  #model(actor: Actor, id: string): ModelEntry {
    try {
      return this.#models.require(actor, id);
    } catch (error) {
      if (error instanceof ApiError && (error.code === 'NOT_FOUND' || error.code === 'FORBIDDEN')) {
        throw new ApiError('NOT_FOUND', `The model ${id} does not exist or you do not have access to it`, {
          extensions: { param: 'model', openaiCode: 'model_not_found' },
        });
      }
      throw error;
    }
  }

  async prepare(actor: Actor, body: CompletionRequest): Promise<PreparedCompletion> {
    if (body.n !== undefined && body.n !== null && body.n !== 1) throw invalid('Only n = 1 is supported', 'n');
    if (body.tools !== undefined || body.tool_choice !== undefined)
      throw invalid('Tools are not supported', body.tools !== undefined ? 'tools' : 'tool_choice');
    if (body.functions !== undefined || body.function_call !== undefined) throw invalid('Functions are not supported', 'functions');
    if (body.logprobs === true) throw invalid('logprobs are not supported', 'logprobs');
    if (body.response_format && body.response_format.type !== 'text') throw invalid('Only text responses are supported', 'response_format');
    if (body.stream_options && !body.stream) throw invalid('stream_options is only allowed with stream: true', 'stream_options');
    // access lists and disabled models as the admin left them, on every instance; a reload due only to the TTL
    // runs behind this request (as for chat streams), so a completion's first chunk never waits for a catalog read
    await this.#models.refreshAccess();
    const model = this.#model(actor, body.model);
    const { context, message, firstUserText } = conversation(body.messages);
    const maxOutputTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    if (maxOutputTokens !== undefined && maxOutputTokens > model.maxOutputTokens) {
      throw invalid(
        `${model.id} writes at most ${model.maxOutputTokens} tokens per reply`,
        body.max_completion_tokens ? 'max_completion_tokens' : 'max_tokens',
      );
    }
    const stop = typeof body.stop === 'string' ? [body.stop] : (body.stop ?? undefined);
    return {
      model,
      context,
      message,
      title: titleFrom(firstUserText),
      maxOutputTokens,
      sampling: { temperature: body.temperature ?? undefined, stop },
      stream: body.stream === true,
      includeUsage: body.stream_options?.include_usage === true,
    };
  }

  /**
   * a new session of the caller for this completion, titled from the first user message; its write runs on while
   * the stream starts (the stream waits for it before its terminal event)
   */
  newSession(actor: Actor, prepared: PreparedCompletion): NewSession {
    const now = new Date();
    const doc: SessionDoc = {
      _id: new Types.ObjectId(),
      userId: actor.userId,
      modelId: prepared.model.id,
      title: prepared.title,
      titled: true,
      createdAt: now,
      updatedAt: now,
    };
    // the stream ends with an error when it failed; a refusal before the stream opened waits for it in run()
    const written = pendingWrite(this.#sessions.dal.createSession({ _id: doc._id, userId: actor.userId, modelId: doc.modelId, title: doc.title }));
    return { doc, written };
  }

  /**
   * Runs the completion through the stream pipeline into `sink`. A refusal before the stream opened (no credits,
   * validation) leaves nothing behind: the new session is deleted and the refusal is rethrown.
   */
  async run(input: {
    actor: Actor;
    userToken: string | undefined;
    session: NewSession;
    prepared: PreparedCompletion;
    sink: StreamSink;
    opened: () => boolean;
  }) {
    const { actor, prepared, session } = input;
    try {
      await this.#streams.run({
        actor,
        userToken: input.userToken,
        sessionId: session.doc._id.toHexString(),
        newSession: session,
        message: prepared.message,
        context: prepared.context,
        maxOutputTokens: prepared.maxOutputTokens,
        sampling: prepared.sampling,
        sink: input.sink,
      });
    } catch (error) {
      if (!input.opened()) {
        // after its write settled, so the delete cannot run ahead of the insert (a failed insert left nothing to delete)
        const failed = await session.written;
        if (!failed) {
          await this.#sessions.dal.deleteSession(session.doc._id).catch((deleteError: unknown) => {
            this.#logger.warn({ err: deleteError, sessionId: session.doc._id.toHexString() }, 'could not delete the session of a refused completion');
          });
        }
      }
      throw error;
    }
  }

  /** the whole reply as OpenAI's `chat.completion` object (a failed run is a 502 in OpenAI's error shape) */
  completion(sink: CollectingSink, modelId: string, sessionId: string) {
    const terminal = sink.terminal();
    if (!terminal || terminal.event === 'error') {
      throw new ApiError('UPSTREAM_UNAVAILABLE', terminal?.data.detail ?? 'The model failed to answer', { status: 502 });
    }
    const { data } = terminal;
    return {
      id: completionId(data.messageId),
      object: 'chat.completion' as const,
      created: Math.floor(Date.now() / 1000),
      model: modelId,
      choices: [
        {
          index: 0,
          message: { role: 'assistant' as const, content: sink.text, refusal: null },
          logprobs: null,
          finish_reason: finishReason(terminal),
        },
      ],
      usage: openAiUsage(data.usage),
      system_fingerprint: null,
      session_id: sessionId,
      credits: data.credits,
      ...(terminal.event === 'interrupted' ? { interruption: { by: terminal.data.by, reason: terminal.data.reason } } : {}),
    };
  }
}

/** A collecting sink that remembers whether the stream opened (refusals come before that). */
export class OpenAiCollectingSink extends CollectingSink {
  opened = false;
  override open(): void {
    this.opened = true;
  }
}
