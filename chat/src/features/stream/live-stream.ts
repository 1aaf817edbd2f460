import type { ChatStreamEvent } from '@platform/shared-types';
import type { ChatBus } from './chat-bus.ts';
import type { StopCause } from './settle.ts';
import type { StreamSink } from './sse.ts';

/**
 * A stream between its opening and its terminal event: where its events go (the client's sink and, in order,
 * the session's observers through Redis) and why it was stopped, if it was (the first cause wins).
 */
export class LiveStream {
  readonly sessionId: string;
  readonly streamId: string;
  readonly messageId: string;
  readonly #sink: StreamSink;
  readonly #bus: ChatBus;
  readonly #controller = new AbortController();
  #cause: StopCause | undefined;
  #seq = 0;

  constructor(input: { sessionId: string; streamId: string; messageId: string; sink: StreamSink; bus: ChatBus }) {
    this.sessionId = input.sessionId;
    this.streamId = input.streamId;
    this.messageId = input.messageId;
    this.#sink = input.sink;
    this.#bus = input.bus;
  }

  /** aborted once the stream is stopped: the provider closes its upstream request */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get cause(): StopCause | undefined {
    return this.#cause;
  }

  stop(cause: StopCause): void {
    this.#cause ??= cause;
    this.#controller.abort();
  }

  /** to the client (unless it is gone) and to observers, numbered so a late observer drops what it replayed twice */
  emit(event: ChatStreamEvent, options: { toClient: boolean } = { toClient: true }): void {
    if (options.toClient) this.#sink.send(event);
    this.#bus.publishSessionEvent(this.sessionId, { ...event, streamId: this.streamId, seq: this.#seq++ }, { replay: true });
  }
}
