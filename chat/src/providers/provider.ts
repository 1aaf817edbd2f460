import type { ModelEntry } from '@platform/shared-types';

export interface ChatTurn {
  role: 'user' | 'assistant' | 'system';
  content: string;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** Optional sampling controls (the OpenAI-compatible API); a provider that has no such control ignores it. */
export interface Sampling {
  temperature?: number;
  /** stop sequences: the reply ends before the first one */
  stop?: string[];
}

export interface ProviderRequest extends Sampling {
  model: ModelEntry;
  /** the conversation, oldest first; the last turn is the user's new message */
  turns: ChatTurn[];
  maxOutputTokens: number;
  sessionId: string;
  signal: AbortSignal;
}

/** What a provider yields: text as it arrives, then one `end` with the real usage when the upstream reported it. */
export type ProviderEvent = { type: 'delta'; text: string } | { type: 'end'; usage?: Usage; stopReason: string };

/** One streaming interface for every upstream. Aborting `signal` must close the upstream request. */
export interface Provider {
  stream(request: ProviderRequest): AsyncIterable<ProviderEvent>;
}

/** An upstream failure (HTTP error, exception frame, malformed stream). The message is safe to show. */
export class ProviderError extends Error {
  readonly provider: string;
  constructor(provider: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'ProviderError';
    this.provider = provider;
  }
}
