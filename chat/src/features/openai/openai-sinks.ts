import type { ChatStreamEvent, StreamUsage, TerminalStreamEvent } from '@platform/shared-types';
import type { Response } from 'express';
import { openSse, type StreamSink, writeSseComment, writeSseNow } from '../stream/sse.ts';

/** What ended a reply, in OpenAI's words; an interrupt by a supervisor is `interrupted` (with `interruption` beside it). */
export function finishReason(terminal: TerminalStreamEvent): string {
  if (terminal.event === 'interrupted') return 'interrupted';
  if (terminal.event === 'error') return 'error';
  const { stopReason } = terminal.data;
  if (stopReason === 'max_tokens' || stopReason === 'length') return 'length';
  if (stopReason === 'content_filter' || stopReason === 'guardrail_intervened') return 'content_filter';
  return 'stop';
}

export function openAiUsage(usage: StreamUsage): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: usage.inputTokens, completion_tokens: usage.outputTokens, total_tokens: usage.inputTokens + usage.outputTokens };
}

/** `chatcmpl-` and the stored reply's message id: the completion id names the reply in the session */
export function completionId(messageId: string): string {
  return `chatcmpl-${messageId}`;
}

/**
 * The stream pipeline's events as OpenAI `chat.completion.chunk` SSE data lines (no `event:` names, which OpenAI's
 * SDKs do not expect), then `data: [DONE]`. A failure after the first chunk is an `error` object in the stream,
 * which the SDKs raise as an APIError.
 */
export class ChunkSseSink implements StreamSink {
  readonly #res: Response;
  readonly #model: string;
  readonly #sessionId: string;
  readonly #includeUsage: boolean;
  readonly #created = Math.floor(Date.now() / 1000);
  #id = completionId('');
  opened = false;

  constructor(res: Response, options: { model: string; sessionId: string; includeUsage: boolean }) {
    this.#res = res;
    this.#model = options.model;
    this.#sessionId = options.sessionId;
    this.#includeUsage = options.includeUsage;
  }

  #data(payload: unknown): void {
    writeSseNow(this.#res, `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
  }

  #chunk(choices: unknown[], extra: Record<string, unknown> = {}): void {
    this.#data({ id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#model, system_fingerprint: null, choices, ...extra });
  }

  open(): void {
    this.opened = true;
    this.#res.setHeader('X-Session-Id', this.#sessionId);
    openSse(this.#res, { flush: false }); // the head goes out with the role chunk of the `session` event, sent right after this
  }

  send(event: ChatStreamEvent): void {
    if (event.event === 'session') {
      this.#id = completionId(event.data.messageId);
      this.#chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], { session_id: this.#sessionId });
    } else if (event.event === 'delta') this.#chunk([{ index: 0, delta: { content: event.data.text }, logprobs: null, finish_reason: null }]);
    else if (event.event === 'error') {
      this.#data({ error: { message: event.data.detail, type: 'server_error', code: 'upstream_unavailable', param: null } });
      this.#data('[DONE]');
    } else this.#finish(event);
  }

  #finish(event: Exclude<TerminalStreamEvent, { event: 'error' }>): void {
    const interruption = event.event === 'interrupted' ? { interruption: { by: event.data.by, reason: event.data.reason } } : {};
    this.#chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason(event) }], interruption);
    if (this.#includeUsage) this.#chunk([], { usage: openAiUsage(event.data.usage), credits: event.data.credits });
    this.#data('[DONE]');
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
