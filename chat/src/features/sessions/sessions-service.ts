import { type Actor, ApiError, type StoredReply } from '@platform/shared-types';
import type { Types } from 'mongoose';
import type { ModelRegistry } from '../../llm-catalog/model-registry.ts';
import type { ConversationCache } from './conversation-cache.ts';
import type { MessageDoc, SessionDoc, SessionsDal } from './sessions-dal.ts';
import { toObjectId } from './sessions-dal.ts';

export function sessionView(session: SessionDoc) {
  return {
    id: session._id.toHexString(),
    userId: session.userId,
    modelId: session.modelId,
    title: session.title,
    createdAt: session.createdAt.toISOString(),
    updatedAt: session.updatedAt.toISOString(),
  };
}

export function messageView(message: MessageDoc) {
  return {
    id: message._id.toHexString(),
    sessionId: message.sessionId.toHexString(),
    role: message.role,
    content: message.content,
    status: message.status,
    usage: message.usage ? { inputTokens: message.usage.inputTokens, outputTokens: message.usage.outputTokens } : undefined,
    credits: message.credits,
    chargePending: message.chargePending || undefined,
    modelId: message.modelId,
    authorId: message.authorId,
    fileIds: message.fileIds,
    createdAt: message.createdAt.toISOString(),
  };
}

export function storedReplyView(message: MessageDoc): StoredReply {
  return {
    messageId: message._id.toHexString(),
    reservationId: message.reservationId ?? '',
    userId: message.userId,
    sessionId: message.sessionId.toHexString(),
    modelId: message.modelId,
    status: message.status,
    usage: message.usage ? { inputTokens: message.usage.inputTokens, outputTokens: message.usage.outputTokens } : undefined,
    credits: message.credits,
    chargePending: message.chargePending || undefined,
    deleted: message.deletedAt ? true : undefined,
    createdAt: message.createdAt.toISOString(),
  };
}

/** A title from the first message: its first line, whitespace folded, at most 80 characters. */
export function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0]?.replace(/\s+/g, ' ').trim() ?? '';
  if (line.length === 0) return 'New chat';
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

export class SessionsService {
  readonly dal: SessionsDal;
  readonly #models: ModelRegistry;
  /** whether a stream is running on the session (any instance) */
  readonly #isStreaming: (sessionId: string) => Promise<boolean>;

  /** what streams read at their start: every change of a session goes through it */
  readonly #conversations: ConversationCache;

  constructor(deps: { dal: SessionsDal; models: ModelRegistry; conversations: ConversationCache; isStreaming: (sessionId: string) => Promise<boolean> }) {
    this.dal = deps.dal;
    this.#models = deps.models;
    this.#conversations = deps.conversations;
    this.#isStreaming = deps.isStreaming;
  }

  async create(actor: Actor, input: { modelId: string; title?: string }): Promise<SessionDoc> {
    await this.#models.refresh();
    this.#models.require(actor, input.modelId);
    const session = await this.dal.createSession({ userId: actor.userId, modelId: input.modelId, title: input.title });
    await this.#conversations.created(session);
    return session;
  }

  /** the actor's own session; anyone else's is NOT_FOUND (no hint that it exists) */
  async own(actor: Pick<Actor, 'userId'>, id: string): Promise<SessionDoc> {
    const session = await this.dal.findSession(id);
    if (!session || session.userId !== actor.userId) throw new ApiError('NOT_FOUND', 'No such session');
    return session;
  }

  /** any user's session by id, for supervisors and services (authorization is the caller's job) */
  async byId(id: string): Promise<SessionDoc> {
    const session = await this.dal.findSession(id);
    if (!session) throw new ApiError('NOT_FOUND', 'No such session');
    return session;
  }

  async rename(actor: Actor, id: string, patch: { title?: string; modelId?: string }): Promise<SessionDoc> {
    const session = await this.own(actor, id);
    if (patch.modelId !== undefined) {
      await this.#models.refresh();
      this.#models.require(actor, patch.modelId);
    }
    const update: Partial<Pick<SessionDoc, 'title' | 'titled' | 'modelId'>> = {};
    if (patch.title !== undefined) Object.assign(update, { title: patch.title, titled: true });
    if (patch.modelId !== undefined) update.modelId = patch.modelId;
    const updated = await this.#conversations.mutate(session._id.toHexString(), () => this.dal.updateSession(session._id, update));
    // deleted between the ownership check and the update (a concurrent DELETE)
    if (!updated) throw new ApiError('NOT_FOUND', 'No such session');
    return updated;
  }

  async remove(actor: Actor, id: string): Promise<void> {
    const session = await this.own(actor, id);
    if (await this.#isStreaming(id)) throw new ApiError('CONFLICT', 'A reply is streaming in this session; wait for it or stop it first');
    await this.#conversations.mutate(session._id.toHexString(), () => this.dal.deleteSession(session._id));
  }

  /** One page of the metered replies stored in [from, to) (for accounting's reconciliation); `next` when more follow. */
  async meteredReplies(window: { from: Date; to: Date; after?: string; limit: number }): Promise<{ replies: StoredReply[]; next?: string }> {
    const after = window.after === undefined ? undefined : toObjectId(window.after);
    const found = await this.dal.meteredReplies({ from: window.from, to: window.to, after, limit: window.limit });
    const replies = found.map(storedReplyView);
    return { replies, next: found.length === window.limit ? replies.at(-1)?.messageId : undefined };
  }

  async withMessages(actor: Actor, id: string): Promise<{ session: SessionDoc; messages: MessageDoc[] }> {
    const session = await this.own(actor, id);
    return { session, messages: await this.dal.listMessages(session._id as Types.ObjectId) };
  }
}

export { toObjectId };
