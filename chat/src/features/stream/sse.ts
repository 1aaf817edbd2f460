import type { ChatStreamEvent, StreamEvent, TerminalStreamEvent } from '@platform/shared-types';
import { isTerminalEvent } from '@platform/shared-types';
import type { Response } from 'express';

/** Where a stream's events go: an SSE response, or a collector for the non-streaming APIs. */
export interface StreamSink {
  /** called once, after the reservation succeeded: from here on failures are events, not problems */
  open(): void;
  send(event: ChatStreamEvent): void;
  heartbeat(): void;
  end(): void;
  /** `listener` runs if the client goes away before `end` */
  onClose(listener: () => void): void;
}

/**
 * The response head of an event stream. `flush: false` for a sink whose first event follows at once (a stream's
 * `session` event, sent right after `open`): the head goes out with it, one write on the socket instead of two.
 */
export function openSse(res: Response, { flush }: { flush: boolean } = { flush: true }): void {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  if (flush) res.flushHeaders();
  res.socket?.setNoDelay(true);
}

/**
 * Writes an event and puts it on the wire now. Node's response corks its socket on a write and uncorks it on the
 * next tick, which runs only once the microtask queue is empty: a write from inside a promise chain (a provider's
 * delta) would wait behind every microtask queued after it (store and Redis calls of the same stream, ~3 ms).
 */
export function writeSseNow(res: Response, text: string): void {
  if (res.writableEnded) return;
  res.write(text);
  const socket = res.socket;
  while (socket && socket.writableCorked > 0) socket.uncork();
}

export function writeSse(res: Response, { event, data }: StreamEvent): void {
  writeSseNow(res, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export function writeSseComment(res: Response, comment: string): void {
  if (!res.writableEnded) res.write(`: ${comment}\n\n`);
}

export class SseSink implements StreamSink {
  readonly #res: Response;
  constructor(res: Response) {
    this.#res = res;
  }
  /** the head goes out with the `session` event, sent right after this */
  open(): void {
    openSse(this.#res, { flush: false });
  }
  send(event: ChatStreamEvent): void {
    writeSse(this.#res, event);
  }
  heartbeat(): void {
    writeSseComment(this.#res, 'heartbeat');
  }
  end(): void {
    if (!this.#res.writableEnded) this.#res.end();
  }
  onClose(listener: () => void): void {
    this.#res.on('close', () => {
      if (!this.#res.writableFinished) listener();
    });
  }
}

/** Collects a whole reply (POST .../messages and the Flowise-compatible API without streaming). */
export class CollectingSink implements StreamSink {
  readonly events: ChatStreamEvent[] = [];
  #closeListeners: Array<() => void> = [];
  open(): void {}
  send(event: ChatStreamEvent): void {
    this.events.push(event);
  }
  heartbeat(): void {}
  end(): void {
    this.#closeListeners = [];
  }
  onClose(listener: () => void): void {
    this.#closeListeners.push(listener);
  }
  /** the caller went away (its HTTP response closed early) */
  close(): void {
    for (const listener of this.#closeListeners) listener();
  }
  get text(): string {
    return this.events.map((e) => (e.event === 'delta' ? e.data.text : '')).join('');
  }
  terminal(): TerminalStreamEvent | undefined {
    return this.events.find(isTerminalEvent);
  }
}

/**
 * Flowise's own streaming format for the Flowise-compatible API: `data: {"event", "data"}` lines with start, token,
 * metadata, error, abort and end, so existing Flowise clients keep parsing what they get.
 */
export class FlowiseSseSink extends SseSink {
  readonly #res: Response;
  constructor(res: Response) {
    super(res);
    this.#res = res;
  }
  #write(event: string, data: unknown): void {
    if (!this.#res.writableEnded) this.#res.write(`data: ${JSON.stringify({ event, data })}\n\n`);
  }
  override send(event: ChatStreamEvent): void {
    if (event.event === 'session') {
      this.#write('start', '');
      this.#write('metadata', { chatId: event.data.sessionId, sessionId: event.data.sessionId, chatMessageId: event.data.messageId });
      return;
    }
    if (event.event === 'delta') {
      this.#write('token', event.data.text);
      return;
    }
    if (event.event === 'done') {
      const { usage, credits } = event.data;
      this.#write('usageMetadata', { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens, credits });
    } else if (event.event === 'interrupted') this.#write('abort', event.data.reason);
    else this.#write('error', event.data.detail);
    this.#write('end', '[DONE]');
  }
}
