import { randomUUID } from 'node:crypto';
import { type Actor, ApiError, type Logger, type ModelEntry, type ReservationResponse } from '@platform/shared-types';
import { Types } from 'mongoose';
import { chatMetrics } from '../../metrics.ts';
import type { ModelRegistry, ProviderName } from '../../models/model-registry.ts';
import { countPromptTokens, countTokens, estimatePromptTokens, estimateTurnTokens } from '../../models/tokens.ts';
import type { ChatTurn, Provider, Sampling, Usage } from '../../providers/provider.ts';
import { ProviderError } from '../../providers/provider.ts';
import type { MessageDoc, MessageStatus, SessionDoc, SessionsDal } from '../sessions/sessions-dal.ts';
import { type SessionsService, titleFrom, toObjectId } from '../sessions/sessions-service.ts';
import type { AccountingClient } from './accounting-client.ts';
import type { Charge, ChargeOutbox, ChargeResult } from './charge-outbox.ts';
import type { ChatBus, InterruptCommand } from './chat-bus.ts';
import type { StreamSink } from './sse.ts';

/** Text of the user's attached files for the prompt (owner-checked, capped). */
export type AttachmentReader = (userId: string, fileIds: string[]) => Promise<string>;

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
  newSession?: { doc: SessionDoc; written: Promise<unknown> };
  sink: StreamSink;
}

type StopCause =
  | { kind: 'client' }
  | { kind: 'interrupt'; by: string; byUserId: string; reason: string }
  /** the session or the user's message could not be stored: the stream ends, charging what was produced */
  | { kind: 'store'; error: unknown };

interface ActiveStream {
  streamId: string;
  userId: string;
  messageId: string;
  stop(cause: StopCause): void;
}

/** Conversation turns for the prompt: newest history that fits the budget, alternating roles, starting with the user. */
export function buildTurns(history: MessageDoc[], newMessage: string, budgetTokens: number): ChatTurn[] {
  const newTokens = estimateTurnTokens(newMessage) + estimatePromptTokens([]);
  if (newTokens > budgetTokens) throw new ApiError('VALIDATION_FAILED', "The message (with its attachments) does not fit the model's context");
  const kept: ChatTurn[] = [];
  let used = newTokens;
  for (let i = history.length - 1; i >= 0; i--) {
    const message = history[i] as MessageDoc;
    if (message.role === 'supervisor' || message.content.length === 0) continue;
    const cost = estimateTurnTokens(message.content);
    if (used + cost > budgetTokens) break;
    used += cost;
    kept.unshift({ role: message.role, content: message.content });
  }
  kept.push({ role: 'user', content: newMessage });
  // providers such as Bedrock need strictly alternating turns that start with the user
  const merged: ChatTurn[] = [];
  for (const turn of kept) {
    const last = merged.at(-1);
    if (last && last.role === turn.role) last.content = `${last.content}\n\n${turn.content}`;
    else merged.push({ ...turn });
  }
  while (merged.length > 0 && merged[0]?.role !== 'user') merged.shift();
  return merged;
}

/** The caller's conversation (system turns first) and the new message, refused whole when it does not fit: nothing of it is dropped. */
export function contextTurns(context: ChatTurn[], newMessage: string, budgetTokens: number): ChatTurn[] {
  const turns: ChatTurn[] = [
    ...context.filter((t) => t.role === 'system'),
    ...context.filter((t) => t.role !== 'system'),
    { role: 'user', content: newMessage },
  ];
  const merged: ChatTurn[] = [];
  for (const turn of turns) {
    const last = merged.at(-1);
    if (last && last.role === turn.role) last.content = `${last.content}\n\n${turn.content}`;
    else merged.push({ ...turn });
  }
  if (estimatePromptTokens(merged) > budgetTokens)
    throw new ApiError('VALIDATION_FAILED', "The messages do not fit the model's context", { extensions: { param: 'messages' } });
  return merged;
}

/** How a stream ended, as `settle` needs it. */
export interface StreamOutcome {
  reservationId: string;
  /** the provider finished its reply */
  completed: boolean;
  /** why it was stopped early, if it was */
  cause?: StopCause['kind'];
  producedText: boolean;
  /** the tokenizer's count of the prompt and of the produced text (what is charged without provider usage) */
  promptTokens: number;
  outputTokens: number;
  /** the provider's reported usage (a completed reply) */
  reported?: Usage;
}

/**
 * What to store and charge for a stream's outcome: a completed reply is finalized with the provider's usage; a
 * stopped or failed one is aborted with what was produced. An upstream that failed before producing anything is
 * not billed; anything produced (or stopped by the user) is. A failed conversation write makes the reply an error,
 * charged like the rest.
 */
export function settle(outcome: StreamOutcome): { status: MessageStatus; usage: Usage; charge: Charge } {
  const { reservationId, completed, cause } = outcome;
  const failedEmpty = !completed && (cause === undefined || cause === 'store') && !outcome.producedText;
  const produced: Usage = { inputTokens: failedEmpty ? 0 : outcome.promptTokens, outputTokens: outcome.outputTokens };
  if (completed) {
    const usage = outcome.reported ?? produced;
    return { status: cause === 'store' ? 'error' : 'complete', usage, charge: { kind: 'finalize', body: { reservationId, ...usage } } };
  }
  const status: MessageStatus = cause === 'client' || cause === 'interrupt' ? 'interrupted' : 'error';
  return { status, usage: produced, charge: { kind: 'abort', body: { reservationId, ...produced } } };
}

export interface StreamDeps {
  /** renewMs: how often a running stream renews its reservation and checkpoints its usage (capped at a quarter of the TTL) */
  config: { heartbeatMs: number; renewMs: number };
  logger: Logger;
  models: ModelRegistry;
  providers: Map<ProviderName, Provider>;
  sessions: SessionsService;
  dal: SessionsDal;
  bus: ChatBus;
  accounting: AccountingClient;
  outbox: ChargeOutbox;
  attachments: AttachmentReader;
}

/**
 * Runs metered streams: reserve, stream the provider's reply to the sink and to observers (Redis), store the
 * reply, charge exactly once (finalize on success, abort with what was produced otherwise; through the outbox when
 * accounting is down). One stream per session across instances (Redis lock); interrupts reach the holder.
 */
export class StreamService {
  readonly #deps: StreamDeps;
  readonly #active = new Map<string, ActiveStream>();
  readonly #instanceId = randomUUID();
  readonly #running = new Set<Promise<void>>();
  #unsubscribeControl: (() => Promise<void>) | undefined;

  constructor(deps: StreamDeps) {
    this.#deps = deps;
  }

  /** Listens for interrupts addressed to streams this instance holds. */
  async start(): Promise<void> {
    this.#unsubscribeControl = await this.#deps.bus.subscribe(this.#deps.bus.controlChannel, (message) => {
      const command = JSON.parse(message) as InterruptCommand;
      if (command.type === 'interrupt') this.#active.get(command.sessionId)?.stop({ kind: 'interrupt', ...command });
    });
  }

  /** Stops taking interrupts, ends running streams and waits (bounded) until they stored and charged what they produced. */
  async stop(graceMs = 5_000): Promise<void> {
    await this.#unsubscribeControl?.();
    for (const stream of this.#active.values()) stream.stop({ kind: 'client' });
    const finished = Promise.allSettled(this.#running);
    await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
  }

  get activeCount(): number {
    return this.#active.size;
  }

  isStreaming(sessionId: string): Promise<boolean> {
    return this.#deps.bus.isLocked(sessionId);
  }

  /** Asks whichever instance holds the session's stream to stop it. CONFLICT when nothing is streaming. */
  async interrupt(sessionId: string, by: Actor, reason: string): Promise<void> {
    if (!(await this.isStreaming(sessionId))) throw new ApiError('CONFLICT', 'No reply is streaming in this session');
    await this.#deps.bus.publishControl({ type: 'interrupt', sessionId, by: by.username, byUserId: by.userId, reason });
  }

  /**
   * Everything that can be refused (validation, CONFLICT, INSUFFICIENT_CREDITS) throws before `sink.open()`,
   * leaving no assistant message and no user message behind. After `open`, the promise settles when the stream
   * has ended with exactly one terminal event.
   */
  async run(request: StreamRequest): Promise<void> {
    const { dal, bus } = this.#deps;
    const { actor, sink } = request;
    // a client that leaves while we reserve is noticed once the stream starts
    const early = { closed: false };
    sink.onClose(() => {
      early.closed = true;
    });
    // the session and its history in one round trip (ownership is checked before anything is used)
    const objectId = toObjectId(request.sessionId);
    const [session, history] = await Promise.all([
      request.newSession ? request.newSession.doc : this.#deps.sessions.own(actor, request.sessionId),
      objectId && !request.context && !request.newSession ? dal.listMessages(objectId) : Promise.resolve([] as MessageDoc[]),
      // an admin's change (access, disable) holds from this request on; a caller that made the session for this
      // stream (the OpenAI-compatible API) refreshed and chose the model just before
      request.newSession ? undefined : this.#deps.models.refresh(),
    ]);
    const model = this.#deps.models.require(actor, session.modelId);
    const provider = this.#deps.providers.get(model.provider);
    if (!provider) throw new ApiError('UPSTREAM_UNAVAILABLE', `No provider for ${model.provider} is configured`);

    const sessionId = session._id.toHexString();
    const streamId = randomUUID();
    const holder = `${this.#instanceId}:${streamId}`;
    const locked = await bus.acquireLock(sessionId, holder).catch((error: unknown) => {
      throw new ApiError('UPSTREAM_UNAVAILABLE', 'The chat service cannot reach Redis', { cause: error });
    });
    if (!locked) throw new ApiError('CONFLICT', 'A reply is already streaming in this session');

    let prepared: {
      turns: ChatTurn[];
      inputTokens: number;
      maxOutputTokens: number;
      reservationId: string;
      reservation: ReservationResponse;
      written: Promise<unknown>;
    };
    try {
      const attachmentText = request.fileIds && request.fileIds.length > 0 ? await this.#deps.attachments(actor.userId, request.fileIds) : '';
      if (request.maxOutputTokens !== undefined && request.maxOutputTokens > model.maxOutputTokens) {
        throw new ApiError('VALIDATION_FAILED', `${model.id} writes at most ${model.maxOutputTokens} tokens per reply`);
      }
      const maxOutputTokens = request.maxOutputTokens ?? model.defaultMaxOutputTokens;
      const budget = model.contextTokens - maxOutputTokens;
      const turns = request.context
        ? contextTurns(request.context, request.message + attachmentText, budget)
        : buildTurns(history, request.message + attachmentText, budget);
      // reserve a conservative estimate; an abort without provider usage is charged the plain count
      const inputTokens = countPromptTokens(turns);
      const reservedInputTokens = Math.min(estimatePromptTokens(turns), 10_000_000);
      const reservationId = randomUUID();
      const userMessageId = new Types.ObjectId();
      // store the user message (and a new session) while reserving. Money needs the reservation before the first
      // token; the writes need only be done before the terminal event. A refused reservation undoes the writes.
      const written = Promise.all([
        request.newSession?.written,
        dal.addMessage({
          _id: userMessageId,
          sessionId: session._id,
          userId: actor.userId,
          role: 'user',
          content: request.message,
          status: 'complete',
          modelId: model.id,
          fileIds: request.fileIds && request.fileIds.length > 0 ? request.fileIds : undefined,
        }),
      ]);
      // observed from here on (a write may fail while the reservation is still on its way)
      written.catch(() => undefined);
      const [reserved] = await Promise.allSettled([
        this.#reserve(
          // the API key's credit limit applies to what is reserved through it (DESIGN 5b)
          {
            reservationId,
            sessionId,
            modelId: model.id,
            inputTokens: reservedInputTokens,
            maxOutputTokens,
            ...(actor.apiKeyId ? { apiKeyId: actor.apiKeyId } : {}),
          },
          request.userToken,
        ),
      ]);
      if (reserved.status === 'rejected') {
        await written.catch(() => undefined);
        await dal
          .deleteMessage(userMessageId)
          .catch((error: unknown) => this.#deps.logger.warn({ err: error, sessionId }, 'could not undo the user message of a refused stream'));
        throw reserved.reason;
      }
      prepared = { turns, inputTokens, maxOutputTokens, reservationId, reservation: reserved.value, written };
    } catch (error) {
      await bus.releaseLock(sessionId, holder).catch(() => undefined);
      throw error;
    }
    const titled = session.titled ? Promise.resolve() : dal.titleFromFirstMessage(session._id, titleFrom(request.message)).catch(() => undefined);
    const running = this.#stream({ request, model, provider, sessionId, sessionObjectId: session._id, streamId, holder, early, titled, ...prepared });
    this.#running.add(running);
    try {
      await running;
    } finally {
      this.#running.delete(running);
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

  /**
   * While a stream runs: renew its reservation (so accounting's sweeper leaves it alone) and checkpoint what it
   * produced into the outbox (charged by any instance if this process dies), at an interval well below the TTL.
   * Failures are logged and tried again on the next tick: a late charge is still taken (DESIGN 8). The returned
   * stopper waits for a tick in flight, so no checkpoint lands after the final charge.
   */
  #keepReservation(reservation: ReservationResponse, produced: () => Usage): () => Promise<void> {
    const { accounting, outbox, logger } = this.#deps;
    const ttlMs = (reservation.ttlSeconds ?? Number.POSITIVE_INFINITY) * 1_000;
    const intervalMs = Math.max(50, Math.min(this.#deps.config.renewMs, Math.floor(ttlMs / 4)));
    // the outbox replays the checkpoint only after three missed renewals (the holder is gone)
    const leaseMs = intervalMs * 3;
    const reservationId = reservation.reservationId;
    let warned = false;
    const tick = async () => {
      const checkpoint = outbox.checkpoint({ kind: 'abort', body: { reservationId, ...produced() } }, leaseMs);
      const renewal = accounting.renew({ reservationId });
      const [saved, renewed] = await Promise.allSettled([checkpoint, renewal]);
      if ((saved.status === 'rejected' || renewed.status === 'rejected') && !warned) {
        warned = true;
        const reason = saved.status === 'rejected' ? saved.reason : (renewed as PromiseRejectedResult).reason;
        logger.warn({ err: reason, reservationId }, 'could not renew the reservation or checkpoint the stream; retrying on the next tick');
      }
    };
    let inFlight: Promise<void> = tick();
    const timer = setInterval(() => {
      inFlight = inFlight.then(tick);
    }, intervalMs);
    return async () => {
      clearInterval(timer);
      await inFlight;
    };
  }

  async #stream(s: {
    request: StreamRequest;
    model: ModelEntry;
    provider: Provider;
    sessionId: string;
    sessionObjectId: Types.ObjectId;
    streamId: string;
    holder: string;
    early: { closed: boolean };
    /** the title write, finished before the reply is stored */
    titled: Promise<void>;
    turns: ChatTurn[];
    /** the tokenizer's count of the prompt (what an abort without provider usage is charged) */
    inputTokens: number;
    maxOutputTokens: number;
    reservationId: string;
    reservation: ReservationResponse;
    /** the user message (and new session) writes, done before the terminal event */
    written: Promise<unknown>;
  }): Promise<void> {
    const { dal, bus, logger } = this.#deps;
    const { sink, actor } = s.request;
    const messageId = new Types.ObjectId();
    const controller = new AbortController();
    const state: { cause?: StopCause } = {};
    let seq = 0;
    const emit = (event: string, data: unknown, toClient = true) => {
      if (toClient) sink.send(event, data);
      bus.publishSessionEvent(s.sessionId, { event, data, streamId: s.streamId, seq: seq++ }, { replay: true });
    };
    const stop = (stopCause: StopCause) => {
      state.cause ??= stopCause;
      controller.abort();
    };
    this.#active.set(s.sessionId, { streamId: s.streamId, userId: actor.userId, messageId: messageId.toHexString(), stop });
    sink.onClose(() => stop({ kind: 'client' }));
    if (s.early.closed) stop({ kind: 'client' });
    s.written.catch((error: unknown) => {
      logger.error({ err: error, sessionId: s.sessionId }, 'could not store the conversation; ending the stream');
      stop({ kind: 'store', error });
    });

    // a session made for this stream has no replay list of an earlier stream to clear
    if (!s.request.newSession) await bus.startReplay(s.sessionId).catch(() => undefined);
    sink.open();
    emit('session', { sessionId: s.sessionId, messageId: messageId.toHexString(), reservationId: s.reservationId, modelId: s.model.id });
    const heartbeat = setInterval(() => {
      sink.heartbeat();
      bus.refreshLock(s.sessionId, s.holder).catch(() => undefined);
    }, this.#deps.config.heartbeatMs);

    let text = '';
    const labels = { model: s.model.id, provider: s.model.provider };
    chatMetrics.streamsOpen.inc(labels);
    const endFirstToken = chatMetrics.timeToFirstToken.startTimer(labels);
    const keeping = this.#keepReservation(s.reservation, () => ({ inputTokens: s.inputTokens, outputTokens: countTokens(text) }));
    let reported: Usage | undefined;
    let stopReason = 'end_turn';
    let completed = false;
    let failure: unknown;
    try {
      if (state.cause) throw new Error('stopped before the provider started');
      for await (const event of s.provider.stream({
        model: s.model,
        turns: s.turns,
        maxOutputTokens: s.maxOutputTokens,
        sessionId: s.sessionId,
        signal: controller.signal,
        ...s.request.sampling,
      })) {
        if (event.type === 'delta') {
          if (text === '') endFirstToken();
          text += event.text;
          emit('delta', { text: event.text });
        } else {
          reported = event.usage;
          stopReason = event.stopReason;
        }
      }
      completed = true;
    } catch (error) {
      if (!state.cause) failure = error;
    } finally {
      clearInterval(heartbeat);
      chatMetrics.streamsOpen.dec(labels);
      await keeping();
    }
    if (failure) chatMetrics.providerErrors.inc(labels);

    // the writes the stream did not wait for are done before anything is told (a failure ends it as an error)
    await s.written.catch(() => undefined);
    const cause = state.cause;
    const {
      status,
      usage,
      charge: chargeRequest,
    } = settle({
      reservationId: s.reservationId,
      completed,
      cause: cause?.kind,
      producedText: text.length > 0,
      promptTokens: s.inputTokens,
      outputTokens: countTokens(text),
      reported,
    });
    chatMetrics.streams.inc({ ...labels, outcome: status });
    chatMetrics.tokens.inc({ ...labels, direction: 'input' }, usage.inputTokens);
    chatMetrics.tokens.inc({ ...labels, direction: 'output' }, usage.outputTokens);
    const charge: ChargeResult = await this.#deps.outbox.attempt(chargeRequest);
    // accounting is the one source of prices: while the charge waits in the outbox the reply shows no number (and
    // chargePending); the outbox writes accounting's number when the charge lands
    const credits = charge.pending ? undefined : charge.credits;
    if (charge.pending) {
      // hold the checkpoint back (with the final usage) until the queued charge below replaces it
      await this.#deps.outbox
        .checkpoint({ kind: 'abort', body: { reservationId: s.reservationId, ...usage } }, 10 * 60_000)
        .catch((error: unknown) => logger.warn({ err: error, reservationId: s.reservationId }, 'could not hold the checkpoint back'));
    } else await this.#deps.outbox.discard(s.reservationId).catch(() => undefined);
    try {
      await s.titled;
      await Promise.all([
        dal.addMessage({
          _id: messageId,
          sessionId: s.sessionObjectId,
          userId: actor.userId,
          role: 'assistant',
          content: text,
          status,
          usage,
          credits,
          chargePending: charge.pending || undefined,
          reservationId: s.reservationId,
          modelId: s.model.id,
        }),
        dal.touch(s.sessionObjectId),
      ]);
    } catch (error) {
      logger.error({ err: error, sessionId: s.sessionId }, 'could not store the reply');
    }
    if (charge.pending) {
      // after the message, so the retry that lands can settle its credits
      await this.#deps.outbox.enqueue(chargeRequest).catch((error: unknown) => {
        logger.error({ err: error, reservationId: s.reservationId }, "could not queue the charge; left to accounting's sweeper");
      });
    }

    const id = messageId.toHexString();
    if (status === 'complete') emit('done', { messageId: id, usage, credits, chargePending: charge.pending || undefined, stopReason });
    else if (cause?.kind === 'interrupt') {
      emit('interrupted', { messageId: id, by: cause.by, byUserId: cause.byUserId, reason: cause.reason, usage, credits });
      await bus
        .publishUserEvent(actor.userId, 'interrupted', { sessionId: s.sessionId, messageId: id, by: cause.by, reason: cause.reason })
        .catch(() => undefined);
    } else if (cause?.kind === 'client') emit('interrupted', { messageId: id, by: 'client', reason: 'client disconnected', usage, credits }, false);
    else if (cause?.kind === 'store')
      emit('error', { messageId: id, code: 'UPSTREAM_UNAVAILABLE', detail: 'The conversation could not be stored', usage, credits });
    else {
      const detail = failure instanceof ProviderError ? failure.message : 'The model failed to answer';
      if (!(failure instanceof ProviderError)) logger.error({ err: failure, sessionId: s.sessionId }, 'stream failed');
      emit('error', { messageId: id, code: 'UPSTREAM_UNAVAILABLE', detail, usage, credits });
    }
    this.#active.delete(s.sessionId);
    await bus.releaseLock(s.sessionId, s.holder).catch(() => undefined);
    sink.end();
  }
}
