import { randomUUID } from 'node:crypto';
import { type Actor, ApiError, type Logger, type ModelEntry, type ReservationResponse } from '@platform/shared-types';
import { Types } from 'mongoose';
import type { ModelRegistry, ProviderName } from '../../llm-catalog/model-registry.ts';
import type { ChatTurn, Provider, Sampling } from '../../providers/provider.ts';
import { type CacheTicket, type Conversation, type ConversationCache, type HistoryTurn, historyTurns, type MissSeen } from '../sessions/conversation-cache.ts';
import type { SessionDoc, SessionsDal } from '../sessions/sessions-dal.ts';
import { type SessionsService, toObjectId } from '../sessions/sessions-service.ts';
import type { AccountingClient } from './accounting-client.ts';
import type { ChatBus } from './chat-bus.ts';
import { type Prompt, promptFor } from './prompt.ts';
import { type CreditHints, countSpeculation, HeldUpstream, type HintClaim, worstCaseCredits } from './speculative-start.ts';
import type { StreamSink } from './sse.ts';
import type { StoreGate } from './store-gate.ts';

/** A promise's result as a value, so two that run side by side can both be looked at. */
type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

function outcome<T>(work: Promise<T>): Promise<Outcome<T>> {
  return work.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** A provider call started alongside its reservation, and its share of the credit hints. */
interface Speculation {
  upstream: HeldUpstream;
  claim: HintClaim;
}

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

/**
 * The session's stream lock (one stream per session across instances), held by one stream of this instance, and
 * the conversation it writes back to the cache when it lets go: what it read plus what it stored, or nothing
 * once a write of the stream failed (the next stream then reads the store).
 */
export class SessionLock {
  readonly sessionId: string;
  readonly holder: string;
  readonly #bus: ChatBus;
  readonly #conversations: ConversationCache;
  readonly #ticket: CacheTicket;
  #next: Conversation | undefined;
  readonly #log: Logger;
  #warned = false;

  constructor(input: {
    bus: ChatBus;
    conversations: ConversationCache;
    sessionId: string;
    holder: string;
    ticket: CacheTicket;
    /** the conversation as read (undefined: this stream writes nothing back) */
    read: Conversation | undefined;
    log: Logger;
  }) {
    this.#bus = input.bus;
    this.#conversations = input.conversations;
    this.sessionId = input.sessionId;
    this.holder = input.holder;
    this.#ticket = input.ticket;
    this.#next = input.read && { ...input.read, history: [...input.read.history] };
    this.#log = input.log;
  }

  /** keeps the lock from expiring while the stream runs; a failure is retried on the next heartbeat (logged once) */
  refresh(): void {
    this.#bus.refreshLock(this.sessionId, this.holder).catch((error: unknown) => {
      if (!this.#warned) this.#log.warn({ err: error }, 'could not refresh the stream lock; retrying on the next heartbeat');
      this.#warned = true;
    });
  }

  /** the stream stored this message (the user's, then its reply): the conversation written back ends with it */
  stored(message: HistoryTurn): void {
    this.#next?.history.push(...historyTurns([message]));
  }

  /** the stream titled the session from its first message */
  titled(): void {
    if (this.#next) this.#next.titled = true;
  }

  /** a write of the stream failed (or may have landed after all): nothing is written back */
  spoil(): void {
    this.#next = undefined;
  }

  /** a lock that cannot be released expires on its own (its TTL); the cache entry was spent when it was taken */
  async release(): Promise<void> {
    await this.#conversations.release(this.sessionId, this.holder, this.#ticket, this.#next).catch((error: unknown) => {
      this.#log.warn({ err: error }, 'could not release the stream lock; it expires on its own');
    });
  }
}

/** What a stream needs once it may start: everything that could refuse it has passed. */
export interface PreparedStream {
  session: StreamSession;
  sessionId: string;
  streamId: string;
  model: ModelEntry;
  provider: Provider;
  lock: SessionLock;
  prompt: Prompt;
  reservation: ReservationResponse;
  /** the provider call, when it started alongside the reservation (held until read: see HeldUpstream) */
  upstream?: HeldUpstream;
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
  conversations: ConversationCache;
  accounting: AccountingClient;
  attachments: AttachmentReader;
  /** what accounting last answered per user: whether a provider may start alongside its reservation */
  hints: CreditHints;
  /** store writes wait while streams start (see StoreGate) */
  gate: StoreGate;
}

/** what a stream uses of its session (the cache holds exactly this) */
export type StreamSession = Pick<SessionDoc, '_id' | 'userId' | 'modelId' | 'titled'>;

/** `locking`: the stream lock, taken before the load returns except for a session made for this stream (see prepare) */
type Loaded = { session: StreamSession; history: HistoryTurn[]; model: ModelEntry; provider: Provider; locking: Promise<Outcome<SessionLock>>; log: Logger };

const redisUnreachable = (error: unknown): never => {
  throw new ApiError('UPSTREAM_UNAVAILABLE', 'The chat service cannot reach Redis', { cause: error });
};
const streamConflict = () => new ApiError('CONFLICT', 'A reply is already streaming in this session');

/**
 * The first step of a stream: the session and its history, the stream lock, the attachments and the prompt, and
 * the reservation (with the user message written alongside it, undone when the reservation is refused). When the
 * credit hints allow, the provider call starts alongside the reservation, held: nothing it produces is read
 * before the reservation is confirmed, and a refusal aborts it.
 * Everything that can be refused (validation, CONFLICT, INSUFFICIENT_CREDITS) throws from here, leaving no lock,
 * no user message, no reservation and no provider call behind.
 */
export class StreamPreparation {
  /** `instanceId` names this process in the lock's holder */
  readonly #deps: PrepareDeps & { instanceId: string };

  constructor(deps: PrepareDeps & { instanceId: string }) {
    this.#deps = deps;
  }

  async prepare(request: StreamRequest): Promise<PreparedStream> {
    const streamId = randomUUID();
    const loaded = await this.#load(request, streamId);
    const { session, model, log, locking } = loaded;
    const sessionId = session._id.toHexString();
    let speculation: Speculation | undefined;
    try {
      const prompt = await this.#prompt(request, loaded);
      speculation = this.#speculate(request, loaded, prompt);
      const { reservation, written, lock } = await this.#reserveWhileWriting({ request, session, model, prompt, log, locking, speculation });
      const upstream = speculation?.upstream;
      const { provider } = loaded;
      return {
        session,
        model,
        provider,
        sessionId,
        streamId,
        lock,
        prompt,
        reservation,
        upstream,
        written,
        log: log.child({ reservationId: reservation.reservationId }),
      };
    } catch (error) {
      speculation?.upstream.abort();
      const locked = await locking;
      if (locked.ok) {
        // the user message may have been written and undone (or not): the next stream reads the store
        locked.value.spoil();
        await locked.value.release();
      }
      throw error;
    }
  }

  async #prompt(request: StreamRequest, { model, history }: Loaded): Promise<Prompt> {
    const attachmentText = request.fileIds && request.fileIds.length > 0 ? await this.#deps.attachments(request.actor.userId, request.fileIds) : '';
    return promptFor(model, { message: request.message, attachmentText, history, context: request.context, maxOutputTokens: request.maxOutputTokens });
  }

  /**
   * Starts the provider alongside the reservation when this instance's last answer from accounting for the user
   * (and key) covers the worst case (CreditHints); its events are held until the reservation is confirmed.
   */
  #speculate(request: StreamRequest, { session, model, provider }: Loaded, prompt: Prompt): Speculation | undefined {
    const { actor } = request;
    const worstCase = worstCaseCredits(model, prompt.reservedInputTokens, prompt.maxOutputTokens);
    const claim = this.#deps.hints.claim(actor.userId, actor.apiKeyId, worstCase);
    if (!claim) return undefined;
    const turns = { model, turns: prompt.turns, maxOutputTokens: prompt.maxOutputTokens, sessionId: session._id.toHexString() };
    try {
      return { claim, upstream: new HeldUpstream(provider, { ...turns, ...request.sampling }) };
    } catch (error) {
      claim.release();
      throw error;
    }
  }

  /**
   * The session and its history with the stream lock taken (ownership checked before anything is used), its model
   * and provider. A refusal here happens before any write, so the conversation read is written back as it was.
   */
  async #load(request: StreamRequest, streamId: string): Promise<Loaded> {
    const objectId = request.newSession ? request.newSession.doc._id : toObjectId(request.sessionId);
    if (!objectId) throw new ApiError('NOT_FOUND', 'No such session');
    const sessionId = objectId.toHexString();
    const log = this.#deps.logger.child({ sessionId, streamId });
    const [{ session, history, locking }] = await Promise.all([
      this.#conversation(request, objectId, `${this.#deps.instanceId}:${streamId}`, log),
      // an admin's change (access, disable) holds from this request on; a caller that made the session for this
      // stream (the OpenAI-compatible API) refreshed and chose the model just before
      request.newSession ? undefined : this.#deps.models.refreshAccess(),
    ]);
    try {
      const model = this.#deps.models.require(request.actor, session.modelId);
      const provider = this.#deps.providers.get(model.provider);
      if (!provider) throw new ApiError('UPSTREAM_UNAVAILABLE', `No provider for ${model.provider} is configured`);
      return { session, history, model, provider, locking, log };
    } catch (error) {
      const locked = await locking;
      if (locked.ok) await locked.value.release();
      throw error;
    }
  }

  /**
   * The lock and the conversation: from the cache in the lock's round trip when it holds a valid entry, else from
   * the store as before (then the lock). A stream that brings its own context or session does not use the cache.
   */
  async #conversation(request: StreamRequest, objectId: Types.ObjectId, holder: string, log: Logger) {
    const { actor } = request;
    const sessionId = objectId.toHexString();
    const lockWith = (ticket: CacheTicket, read: Conversation | undefined) =>
      new SessionLock({ bus: this.#deps.bus, conversations: this.#deps.conversations, sessionId, holder, ticket, read, log });
    const locked = (lock: SessionLock) => Promise.resolve({ ok: true as const, value: lock });
    if (request.newSession) {
      // a session made for this stream (the /v1 route) cannot be contended: its lock is taken alongside the
      // reservation (which is undone if the lock fails anyway)
      const locking = outcome(this.#lock(sessionId, holder, undefined).then((ticket) => lockWith(ticket, undefined)));
      return { session: request.newSession.doc as StreamSession, history: [] as HistoryTurn[], locking };
    }
    if (request.context) {
      const session = await this.#deps.sessions.own(actor, sessionId);
      return { session, history: [] as HistoryTurn[], locking: locked(lockWith(await this.#lock(sessionId, holder, undefined), undefined)) };
    }
    const started = await this.#deps.conversations.start(sessionId, holder, actor.userId).catch(redisUnreachable);
    if (started.kind === 'foreign') throw new ApiError('NOT_FOUND', 'No such session');
    if (started.kind === 'busy') throw streamConflict();
    if (started.kind === 'hit') {
      const { conversation, ticket } = started;
      const session: StreamSession = { _id: objectId, userId: conversation.userId, modelId: conversation.modelId, titled: conversation.titled };
      return { session, history: conversation.history, locking: locked(lockWith(ticket, conversation)) };
    }
    const [session, messages] = await Promise.all([this.#deps.sessions.own(actor, sessionId), this.#deps.dal.listMessages(objectId)]);
    const history = historyTurns(messages);
    const ticket = await this.#lock(sessionId, holder, started.seen);
    return { session, history, locking: locked(lockWith(ticket, { userId: session.userId, modelId: session.modelId, titled: session.titled, history })) };
  }

  /** the lock alone (a miss, or a stream that does not use the cache); `seen` lets a miss write back */
  async #lock(sessionId: string, holder: string, seen: MissSeen | undefined): Promise<CacheTicket> {
    const ticket = await this.#deps.conversations.lock(sessionId, holder, seen).catch(redisUnreachable);
    if (!ticket) throw streamConflict();
    return ticket;
  }

  /**
   * Reserves while the user message (and a new session) are stored, and a lock taken alongside is awaited. Money
   * needs the reservation before the first token; the writes need only be done before the terminal event. A refused
   * reservation undoes the writes; a lock that failed after a confirmed reservation undoes both.
   */
  async #reserveWhileWriting(input: {
    request: StreamRequest;
    session: StreamSession;
    model: ModelEntry;
    prompt: Prompt;
    log: Logger;
    locking: Promise<Outcome<SessionLock>>;
    speculation: Speculation | undefined;
  }): Promise<{ reservation: ReservationResponse; written: PendingWrite; lock: SessionLock }> {
    const { request, session, model, prompt, log } = input;
    const { actor } = request;
    const { written, undo: undoMessage } = this.#writeUserMessage(request, session, model, log);
    const body = {
      reservationId: randomUUID(),
      sessionId: session._id.toHexString(),
      modelId: model.id,
      inputTokens: prompt.reservedInputTokens,
      maxOutputTokens: prompt.maxOutputTokens,
      // the API key's credit limit applies to what is reserved through it (DESIGN 5b)
      ...(actor.apiKeyId ? { apiKeyId: actor.apiKeyId } : {}),
    };
    const reserved = await outcome(this.#reserve(body, request.userToken));
    this.#heard(actor, model, input.speculation, reserved);
    const locked = reserved.ok ? await input.locking : undefined;
    if (reserved.ok && locked?.ok) return { reservation: reserved.value, written, lock: locked.value };
    if (reserved.ok) await this.#undoReservation(reserved.value, log);
    await undoMessage();
    throw reserved.ok ? (locked as { ok: false; error: unknown }).error : reserved.error;
  }

  /**
   * The user message (and a new session's write, still running), not waited for before the first token. The insert
   * waits behind the streams that are starting (the gate); `undo` for a refused stream: an insert that started is
   * deleted once it landed, one still behind the gate never runs.
   */
  #writeUserMessage(request: StreamRequest, session: StreamSession, model: ModelEntry, log: Logger): { written: PendingWrite; undo: () => Promise<void> } {
    const { actor } = request;
    const userMessageId = new Types.ObjectId();
    // behind the streams that are starting (this one included): a refusal that comes first leaves it unwritten
    const state = { refused: false, inserted: false };
    const sessionWritten = request.newSession?.written.then((failed) => (failed ? Promise.reject(failed.error) : undefined));
    const messageWritten = this.#deps.gate.after(async () => {
      if (state.refused) return;
      state.inserted = true;
      await this.#deps.dal.addMessage({
        _id: userMessageId,
        sessionId: session._id,
        userId: actor.userId,
        role: 'user',
        content: request.message,
        status: 'complete',
        modelId: model.id,
        fileIds: request.fileIds && request.fileIds.length > 0 ? request.fileIds : undefined,
      });
    });
    const written = pendingWrite(Promise.all([sessionWritten, messageWritten]));
    const undo = async () => {
      state.refused = true;
      if (!state.inserted) return void (await pendingWrite(sessionWritten ?? Promise.resolve()));
      await written;
      await this.#deps.dal
        .deleteMessage(userMessageId)
        .catch((error: unknown) => log.warn({ err: error }, 'could not undo the user message of a refused stream'));
    };
    return { written, undo };
  }

  /** what accounting answered feeds this instance's hints; a refusal makes the user's next stream reserve first */
  #heard(actor: Actor, model: ModelEntry, speculation: Speculation | undefined, reserved: Outcome<ReservationResponse>): void {
    speculation?.claim.release();
    if (reserved.ok) this.#deps.hints.learn(actor.apiKeyId, reserved.value);
    else this.#deps.hints.forget(actor.userId, actor.apiKeyId);
    if (speculation) countSpeculation(model, reserved.ok ? 'confirmed' : 'refused');
  }

  /** a reservation of a stream that cannot start: nothing was produced, nothing is charged (the sweeper expires it if this fails) */
  async #undoReservation({ reservationId }: ReservationResponse, log: Logger): Promise<void> {
    await this.#deps.accounting
      .abort({ reservationId, inputTokens: 0, outputTokens: 0 })
      .catch((error: unknown) =>
        log.warn({ err: error, reservationId }, "could not release the reservation of a stream that did not start; left to accounting's sweeper"),
      );
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
