import { randomUUID } from 'node:crypto';
import { type Actor, ApiError, type Logger, type ModelEntry, type ReservationResponse } from '@platform/shared-types';
import { Types } from 'mongoose';
import type { ModelRegistry, ProviderName } from '../../llm-catalog/model-registry.ts';
import type { ChatTurn, Provider, Sampling } from '../../providers/provider.ts';
import type { MessageDoc, SessionDoc, SessionsDal } from '../sessions/sessions-dal.ts';
import { type SessionsService, toObjectId } from '../sessions/sessions-service.ts';
import type { AccountingClient } from './accounting-client.ts';
import type { ChatBus } from './chat-bus.ts';
import { type Prompt, promptFor } from './prompt.ts';
import type { StreamSink } from './sse.ts';

/** Text of the user's attached files for the prompt (owner-checked, capped). */
export type AttachmentReader = (userId: string, fileIds: string[]) => Promise<string>;

/** A store write the stream does not wait for before its first token: settles with its failure, never rejects. */
export type PendingWrite = Promise<{ error: unknown } | undefined>;

/** `write`'s outcome as a value (a rejection observed from the start, so it is never an unhandled one). */
export function pendingWrite(write: Promise<unknown>): PendingWrite {
  return write.then(
    () => undefined,
    (error: unknown) => ({ error }),
  );
}

export interface StreamRequest {
  actor: Actor;
  /** the user's access token, forwarded to accounting for the reservation */
  userToken: string | undefined;
  sessionId: string;
  message: string;
  fileIds?: string[];
  /** output limit for this reply (default: the model's default; at most the model's maximum) */
  maxOutputTokens?: number;
  /**
   * the turns before `message` as the caller sent them (the OpenAI-compatible API): the prompt is these turns and
   * `message`, in place of the session's stored history
   */
  context?: ChatTurn[];
  /** sampling options passed to the provider (the OpenAI-compatible API) */
  sampling?: Sampling;
  /**
   * a session the caller just made for this stream (the OpenAI-compatible API) and its write, still running: the
   * stream does not wait for it before the first token, only before its terminal event
   */
  newSession?: { doc: SessionDoc; written: PendingWrite };
  sink: StreamSink;
}

/** The session's stream lock (one stream per session across instances), held by one stream of this instance. */
export class SessionLock {
  readonly sessionId: string;
  readonly holder: string;
  readonly #bus: ChatBus;
  readonly #log: Logger;
  #warned = false;

  constructor(input: { bus: ChatBus; sessionId: string; holder: string; log: Logger }) {
    this.#bus = input.bus;
    this.sessionId = input.sessionId;
    this.holder = input.holder;
    this.#log = input.log;
  }

  /** keeps the lock from expiring while the stream runs; a failure is retried on the next heartbeat (logged once) */
  refresh(): void {
    this.#bus.refreshLock(this.sessionId, this.holder).catch((error: unknown) => {
      if (!this.#warned) this.#log.warn({ err: error }, 'could not refresh the stream lock; retrying on the next heartbeat');
      this.#warned = true;
    });
  }

  /** a lock that cannot be released expires on its own (its TTL) */
  async release(): Promise<void> {
    await this.#bus.releaseLock(this.sessionId, this.holder).catch((error: unknown) => {
      this.#log.warn({ err: error }, 'could not release the stream lock; it expires on its own');
    });
  }
}

/** What a stream needs once it may start: everything that could refuse it has passed. */
export interface PreparedStream {
  session: SessionDoc;
  sessionId: string;
  streamId: string;
  model: ModelEntry;
  provider: Provider;
  lock: SessionLock;
  prompt: Prompt;
  reservation: ReservationResponse;
  /** the user message (and a new session) writes, done before the terminal event */
  written: PendingWrite;
  /** this stream's log lines name its session and reservation (and, from the request context, the request) */
  log: Logger;
}

export interface PrepareDeps {
  logger: Logger;
  models: ModelRegistry;
  providers: Map<ProviderName, Provider>;
  sessions: SessionsService;
  dal: SessionsDal;
  bus: ChatBus;
  accounting: AccountingClient;
  attachments: AttachmentReader;
}

type Loaded = { session: SessionDoc; history: MessageDoc[]; model: ModelEntry; provider: Provider };

/**
 * The first step of a stream: the session and its history, the stream lock, the attachments and the prompt, and
 * the reservation (with the user message written alongside it, undone when the reservation is refused).
 * Everything that can be refused (validation, CONFLICT, INSUFFICIENT_CREDITS) throws from here, leaving no lock,
 * no user message and no reservation behind.
 */
export class StreamPreparation {
  /** `instanceId` names this process in the lock's holder */
  readonly #deps: PrepareDeps & { instanceId: string };

  constructor(deps: PrepareDeps & { instanceId: string }) {
    this.#deps = deps;
  }

  async prepare(request: StreamRequest): Promise<PreparedStream> {
    const { session, history, model, provider } = await this.#load(request);
    const sessionId = session._id.toHexString();
    const streamId = randomUUID();
    const log = this.#deps.logger.child({ sessionId, streamId });
    const lock = await this.#lock(sessionId, streamId, log);
    try {
      const attachmentText = request.fileIds && request.fileIds.length > 0 ? await this.#deps.attachments(request.actor.userId, request.fileIds) : '';
      const prompt = promptFor(model, {
        message: request.message,
        attachmentText,
        history,
        context: request.context,
        maxOutputTokens: request.maxOutputTokens,
      });
      const { reservation, written } = await this.#reserveWhileWriting({ request, session, model, prompt, log });
      return {
        session,
        sessionId,
        streamId,
        model,
        provider,
        lock,
        prompt,
        reservation,
        written,
        log: log.child({ reservationId: reservation.reservationId }),
      };
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** the session and its history in one round trip (ownership is checked before anything is used), its model and provider */
  async #load(request: StreamRequest): Promise<Loaded> {
    const { actor } = request;
    const objectId = toObjectId(request.sessionId);
    const [session, history] = await Promise.all([
      request.newSession ? request.newSession.doc : this.#deps.sessions.own(actor, request.sessionId),
      objectId && !request.context && !request.newSession ? this.#deps.dal.listMessages(objectId) : Promise.resolve([] as MessageDoc[]),
      // an admin's change (access, disable) holds from this request on; a caller that made the session for this
      // stream (the OpenAI-compatible API) refreshed and chose the model just before
      request.newSession ? undefined : this.#deps.models.refresh(),
    ]);
    const model = this.#deps.models.require(actor, session.modelId);
    const provider = this.#deps.providers.get(model.provider);
    if (!provider) throw new ApiError('UPSTREAM_UNAVAILABLE', `No provider for ${model.provider} is configured`);
    return { session, history, model, provider };
  }

  async #lock(sessionId: string, streamId: string, log: Logger): Promise<SessionLock> {
    const holder = `${this.#deps.instanceId}:${streamId}`;
    const locked = await this.#deps.bus.acquireLock(sessionId, holder).catch((error: unknown) => {
      throw new ApiError('UPSTREAM_UNAVAILABLE', 'The chat service cannot reach Redis', { cause: error });
    });
    if (!locked) throw new ApiError('CONFLICT', 'A reply is already streaming in this session');
    return new SessionLock({ bus: this.#deps.bus, sessionId, holder, log });
  }

  /**
   * Reserves while the user message (and a new session) are stored. Money needs the reservation before the first
   * token; the writes need only be done before the terminal event. A refused reservation undoes the writes.
   */
  async #reserveWhileWriting(input: { request: StreamRequest; session: SessionDoc; model: ModelEntry; prompt: Prompt; log: Logger }) {
    const { request, session, model, prompt } = input;
    const { actor } = request;
    const userMessageId = new Types.ObjectId();
    const written = pendingWrite(
      Promise.all([
        request.newSession?.written.then((failed) => (failed ? Promise.reject(failed.error) : undefined)),
        this.#deps.dal.addMessage({
          _id: userMessageId,
          sessionId: session._id,
          userId: actor.userId,
          role: 'user',
          content: request.message,
          status: 'complete',
          modelId: model.id,
          fileIds: request.fileIds && request.fileIds.length > 0 ? request.fileIds : undefined,
        }),
      ]),
    );
    const body = {
      reservationId: randomUUID(),
      sessionId: session._id.toHexString(),
      modelId: model.id,
      inputTokens: prompt.reservedInputTokens,
      maxOutputTokens: prompt.maxOutputTokens,
      // the API key's credit limit applies to what is reserved through it (DESIGN 5b)
      ...(actor.apiKeyId ? { apiKeyId: actor.apiKeyId } : {}),
    };
    try {
      return { reservation: await this.#reserve(body, request.userToken), written };
    } catch (refusal) {
      await written; // the delete must not run ahead of the insert
      await this.#deps.dal
        .deleteMessage(userMessageId)
        .catch((error: unknown) => input.log.warn({ err: error }, 'could not undo the user message of a refused stream'));
      throw refusal;
    }
  }

  /** Reserve; a lost answer is retried once with the same reservation id (accounting is idempotent on it). */
  async #reserve(body: Parameters<AccountingClient['initialize']>[0], userToken: string | undefined): Promise<ReservationResponse> {
    try {
      return await this.#deps.accounting.initialize(body, userToken);
    } catch (error) {
      if (!(error instanceof ApiError) || error.code !== 'UPSTREAM_UNAVAILABLE') throw error;
      return await this.#deps.accounting.initialize(body, userToken);
    }
  }
}
