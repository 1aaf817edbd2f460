import { randomUUID } from 'node:crypto';
import { type Actor, ApiError, type Logger, type ReservationResponse } from '@platform/shared-types';
import { Types } from 'mongoose';
import { countTokens } from '../../llm-catalog/tokens.ts';
import { chatMetrics } from '../../metrics.ts';
import { ProviderError, type Sampling, type Usage } from '../../providers/provider.ts';
import { titleFrom } from '../sessions/sessions-service.ts';
import type { ChargeOutbox, ChargeResult } from './charge-outbox.ts';
import type { InterruptCommand } from './chat-bus.ts';
import { LiveStream } from './live-stream.ts';
import { type Settlement, settle, terminalEvent } from './settle.ts';
import type { StreamSink } from './sse.ts';
import type { StartQueue } from './start-queue.ts';
import { type PrepareDeps, type PreparedStream, StreamPreparation, type StreamRequest } from './stream-preparation.ts';

export type { AttachmentReader, StreamRequest } from './stream-preparation.ts';

/** What the provider produced: its text, and how it ended. */
interface Produced {
  text: string;
  completed: boolean;
  reported?: Usage;
  stopReason: string;
  /** the provider failed (not a stop we asked for) */
  failure?: unknown;
  /** a checkpoint of the stream was written (or tried): the outbox may hold one to discard */
  checkpointed: boolean;
}

export interface StreamDeps extends PrepareDeps {
  /** renewMs: how often a running stream renews its reservation and checkpoints its usage (capped at a quarter of the TTL) */
  config: { heartbeatMs: number; renewMs: number };
  outbox: ChargeOutbox;
  /** how many streams are in their start at once (the rest wait their turn) */
  starts: StartQueue;
}

/**
 * Runs metered streams in four steps: prepare (lock, history, prompt, reservation), run (the provider's events to
 * the client and to observers), settle (the outcome as status, usage and charge; charged exactly once, through the
 * outbox when accounting is down) and announce (the stored reply, then the one terminal event). One stream per
 * session across instances (Redis lock); interrupts reach the holder.
 */
export class StreamService {
  readonly #deps: StreamDeps;
  readonly #preparation: StreamPreparation;
  readonly #active = new Map<string, LiveStream>();
  readonly #running = new Set<Promise<void>>();
  #unsubscribeControl: (() => Promise<void>) | undefined;

  constructor(deps: StreamDeps) {
    this.#deps = deps;
    this.#preparation = new StreamPreparation({ ...deps, instanceId: randomUUID() });
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
    // a client that leaves while it waits for its turn frees it; one that leaves while we reserve is noticed once the stream opens
    const early = new AbortController();
    request.sink.onClose(() => early.abort());
    // starting until its first delta is out, its wait for a turn included: store work waits behind it (StoreGate)
    const started = this.#deps.gate.begin();
    try {
      // its turn ends once it is open (reserved, head and session event out): the provider's own latency holds none
      const opened = await this.#deps.starts.enter(early.signal);
      try {
        const prepared = await this.#preparation.prepare(request);
        const running = this.#execute(prepared, request, { closedEarly: early.signal.aborted, opened, started });
        this.#running.add(running);
        try {
          await running;
        } finally {
          this.#running.delete(running);
          prepared.upstream?.abort(); // whatever ended the stream, a provider call it started is closed
        }
      } finally {
        opened();
      }
    } finally {
      started();
    }
  }

  /** run, settle and announce a prepared stream */
  async #execute(
    prepared: PreparedStream,
    request: StreamRequest,
    { closedEarly, opened, started }: { closedEarly: boolean; opened: () => void; started: () => void },
  ): Promise<void> {
    const live = this.#open(prepared, request.sink, closedEarly, request.newSession !== undefined);
    opened();
    const produced = await this.#produce(prepared, live, { sink: request.sink, sampling: request.sampling, started });
    started(); // a stream that ended without a delta no longer holds back store work (its own writes included)
    // the writes the stream did not wait for are done before anything is told (a failure ends it as an error)
    if (await prepared.written) prepared.lock.spoil();
    else prepared.lock.stored({ role: 'user', content: request.message });
    const settlement = settle({
      reservationId: prepared.reservation.reservationId,
      completed: produced.completed,
      cause: live.cause?.kind,
      producedText: produced.text.length > 0,
      promptTokens: prepared.prompt.inputTokens,
      outputTokens: countTokens(produced.text),
      reported: produced.reported,
    });
    this.#count(prepared, settlement);
    const charged = await this.#charge(prepared, settlement, produced.checkpointed);
    await this.#storeReply(prepared, { actor: request.actor, messageId: live.messageId, text: produced.text, settlement, charged }, request.message);
    await this.#announce(prepared, live, request, { settlement, charged, produced });
  }

  /** registers the stream (interrupts, client gone, failed writes stop it) and opens it with its `session` event */
  #open(prepared: PreparedStream, sink: StreamSink, closedEarly: boolean, newSession: boolean): LiveStream {
    const { sessionId, streamId, log } = prepared;
    const live = new LiveStream({ sessionId, streamId, messageId: new Types.ObjectId().toHexString(), sink, bus: this.#deps.bus });
    this.#active.set(sessionId, live);
    sink.onClose(() => live.stop({ kind: 'client' }));
    if (closedEarly) live.stop({ kind: 'client' });
    void prepared.written.then((failed) => {
      if (!failed) return;
      log.error({ err: failed.error }, 'could not store the conversation; ending the stream');
      live.stop({ kind: 'store', error: failed.error });
    });
    // a session made for this stream has no replay list of an earlier stream to clear
    if (!newSession) this.#deps.bus.startReplay(sessionId);
    sink.open();
    const { messageId } = live;
    live.emit({ event: 'session', data: { sessionId, messageId, reservationId: prepared.reservation.reservationId, modelId: prepared.model.id } });
    return live;
  }

  /** the provider's events to the client and observers, with heartbeats, the lock and the reservation kept alive */
  async #produce(
    prepared: PreparedStream,
    live: LiveStream,
    { sink, sampling, started }: { sink: StreamSink; sampling: Sampling | undefined; started: () => void },
  ): Promise<Produced> {
    const { model, prompt } = prepared;
    const labels = { model: model.id, provider: model.provider };
    const produced: Produced = { text: '', completed: false, stopReason: 'end_turn', checkpointed: false };
    const heartbeat = setInterval(() => {
      sink.heartbeat();
      prepared.lock.refresh();
    }, this.#deps.config.heartbeatMs);
    chatMetrics.streamsOpen.inc(labels);
    const endFirstToken = chatMetrics.timeToFirstToken.startTimer(labels);
    const keeping = this.#keepReservation(prepared, () => ({ inputTokens: prompt.inputTokens, outputTokens: countTokens(produced.text) }));
    try {
      if (live.cause) throw new Error('stopped before the provider started');
      const request = { model, turns: prompt.turns, maxOutputTokens: prompt.maxOutputTokens, sessionId: prepared.sessionId, signal: live.signal };
      // a provider call that started alongside the reservation is read only now, after it was confirmed
      const events = prepared.upstream ? prepared.upstream.events(live.signal) : prepared.provider.stream({ ...request, ...sampling });
      for await (const event of events) {
        if (event.type === 'delta') {
          const first = produced.text === '';
          if (first) endFirstToken();
          produced.text += event.text;
          live.emit({ event: 'delta', data: { text: event.text } });
          if (first) {
            started();
            keeping.begin();
          }
        } else {
          produced.reported = event.usage;
          produced.stopReason = event.stopReason;
        }
      }
      produced.completed = true;
    } catch (error) {
      if (!live.cause) produced.failure = error;
    } finally {
      prepared.upstream?.abort(); // a held call that was never read (stopped before the provider started)
      clearInterval(heartbeat);
      chatMetrics.streamsOpen.dec(labels);
      produced.checkpointed = await keeping.stop();
    }
    if (produced.failure) chatMetrics.providerErrors.inc(labels);
    return produced;
  }

  #count(prepared: PreparedStream, { status, usage }: Settlement): void {
    const labels = { model: prepared.model.id, provider: prepared.model.provider };
    chatMetrics.streams.inc({ ...labels, outcome: status });
    chatMetrics.tokens.inc({ ...labels, direction: 'input' }, usage.inputTokens);
    chatMetrics.tokens.inc({ ...labels, direction: 'output' }, usage.outputTokens);
  }

  /**
   * While a stream runs: renew its reservation (so accounting's sweeper leaves it alone) and checkpoint what it
   * produced into the outbox (charged by any instance if this process dies), at an interval well below the TTL.
   * The first checkpoint is written once the first delta is out (`begin`), not before it, and behind the streams
   * that are starting (StoreGate): the reservation was just made, and a burst of streams would otherwise put one
   * store write and one renewal per stream in front of every first token; a stream that ends before it was let
   * through writes none (its final charge comes next). Failures are logged and tried again on the next tick: a late
   * charge is still taken (DESIGN 8). `stop` waits for a tick in flight, so no checkpoint lands after the final
   * charge, and tells whether any checkpoint was written or tried.
   */
  #keepReservation({ reservation, log }: { reservation: ReservationResponse; log: Logger }, produced: () => Usage) {
    const { accounting, outbox } = this.#deps;
    const ttlMs = (reservation.ttlSeconds ?? Number.POSITIVE_INFINITY) * 1_000;
    const intervalMs = Math.max(50, Math.min(this.#deps.config.renewMs, Math.floor(ttlMs / 4)));
    // the outbox replays the checkpoint only after three missed renewals (the holder is gone)
    const leaseMs = intervalMs * 3;
    const reservationId = reservation.reservationId;
    const letGo = outbox.holdLive(reservationId);
    let warned = false;
    const state = { stopped: false, checkpointed: false };
    const stopping = new AbortController();
    const tick = async (renew: boolean) => {
      if (state.stopped) return;
      state.checkpointed = true;
      const checkpoint = outbox.checkpoint({ kind: 'abort', body: { reservationId, ...produced() } }, leaseMs);
      const renewal = renew ? accounting.renew({ reservationId }) : undefined;
      const [saved, renewed] = await Promise.allSettled([checkpoint, renewal]);
      if ((saved.status === 'rejected' || renewed.status === 'rejected') && !warned) {
        warned = true;
        const reason = saved.status === 'rejected' ? saved.reason : (renewed as PromiseRejectedResult).reason;
        log.warn({ err: reason }, 'could not renew the reservation or checkpoint the stream; retrying on the next tick');
      }
    };
    let begun = false;
    let inFlight: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      begun = true;
      inFlight = inFlight.then(() => tick(true));
    }, intervalMs);
    return {
      begin: () => {
        if (begun) return;
        begun = true;
        inFlight = inFlight.then(() => this.#deps.gate.ready(stopping.signal)).then(() => tick(false));
      },
      stop: async (): Promise<boolean> => {
        state.stopped = true;
        stopping.abort();
        clearInterval(timer);
        await inFlight;
        letGo();
        return state.checkpointed;
      },
    };
  }

  /** the settlement's charge, once; when it has to wait for accounting the checkpoint is held back until it is queued */
  async #charge({ reservation, log }: PreparedStream, { charge, usage }: Settlement, checkpointed: boolean): Promise<ChargeResult> {
    const { outbox } = this.#deps;
    const { reservationId } = reservation;
    const charged = await outbox.attempt(charge);
    if (charged.pending) {
      // with the final usage, so a replay of the checkpoint charges what was produced
      await outbox
        .checkpoint({ kind: 'abort', body: { reservationId, ...usage } }, 10 * 60_000)
        .catch((error: unknown) => log.warn({ err: error }, 'could not hold the checkpoint back'));
    } else if (checkpointed) {
      // a leftover checkpoint replays as an abort accounting refuses (the reservation is settled): harmless
      await outbox.discard(reservationId).catch((error: unknown) => log.warn({ err: error }, 'could not discard the checkpoint of a charged stream'));
    }
    return charged;
  }

  /**
   * The reply as stored: its text, status, usage and credits (none while the charge is pending), and the session
   * touched, named after `message` when it had no title (in the same write, after the reply: nothing before the first
   * token waits for it, and on a store that rewrites the whole document, FerretDB, a title written while the reply
   * streams would race a rename made meanwhile); then a pending charge is queued.
   */
  async #storeReply(
    prepared: PreparedStream,
    reply: { actor: Actor; messageId: string; text: string; settlement: Settlement; charged: ChargeResult },
    message: string,
  ): Promise<void> {
    const { dal, outbox } = this.#deps;
    const { status, usage, charge } = reply.settlement;
    try {
      await this.#deps.gate.ready();
      await Promise.all([
        dal.addMessage({
          _id: new Types.ObjectId(reply.messageId),
          sessionId: prepared.session._id,
          userId: reply.actor.userId,
          role: 'assistant',
          content: reply.text,
          status,
          usage,
          credits: reply.charged.pending ? undefined : reply.charged.credits,
          chargePending: reply.charged.pending || undefined,
          reservationId: prepared.reservation.reservationId,
          modelId: prepared.model.id,
        }),
        dal.touch(prepared.session._id, prepared.session.titled ? undefined : titleFrom(message)).then((named) => named && prepared.lock.titled()),
      ]);
      prepared.lock.stored({ role: 'assistant', content: reply.text });
    } catch (error) {
      prepared.lock.spoil();
      prepared.log.error({ err: error }, 'could not store the reply');
    }
    // after the message, so the retry that lands can settle its credits
    if (reply.charged.pending) {
      await outbox.enqueue(charge).catch((error: unknown) => {
        prepared.log.error({ err: error }, "could not queue the charge; left to accounting's sweeper");
      });
    }
  }

  /** the one terminal event (and the owner's interrupt notice), then the stream lets go of the session */
  async #announce(
    prepared: PreparedStream,
    live: LiveStream,
    request: StreamRequest,
    ended: { settlement: Settlement; charged: ChargeResult; produced: Produced },
  ): Promise<void> {
    const { log, sessionId } = prepared;
    const { failure } = ended.produced;
    if (ended.settlement.status === 'error' && live.cause === undefined && !(failure instanceof ProviderError)) log.error({ err: failure }, 'stream failed');
    const cause = live.cause;
    const { event, toClient } = terminalEvent({
      messageId: live.messageId,
      settlement: ended.settlement,
      charged: ended.charged,
      cause,
      stopReason: ended.produced.stopReason,
      failureDetail: failure instanceof ProviderError ? failure.message : 'The model failed to answer',
    });
    live.emit(event, { toClient });
    if (cause?.kind === 'interrupt') {
      const data = { sessionId, messageId: live.messageId, by: cause.by, reason: cause.reason };
      await this.#deps.bus
        .publishUserEvent(request.actor.userId, { event: 'interrupted', data })
        .catch((error: unknown) => log.warn({ err: error }, 'could not tell the owner about the interrupt'));
    }
    this.#active.delete(sessionId);
    await prepared.lock.release();
    request.sink.end();
  }
}
