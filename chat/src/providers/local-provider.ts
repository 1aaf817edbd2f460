import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { countPromptTokens } from '../llm-catalog/tokens.ts';
import type { Provider, ProviderEvent, ProviderRequest } from './provider.ts';

const WORDS = ['the', 'model', 'answers', 'offline', 'with', 'a', 'steady', 'reply', 'of', 'words', 'for', 'local', 'development', 'and', 'tests'];

/**
 * A deterministic dev model: the same conversation always gets the same reply, one word (one token) per
 * `tokenDelayMs`, `tokens` words long (or the output limit), with exact usage: every word is one output token
 * and input tokens are the tokenizer's count of the prompt (chat's own count, without the estimate's margin).
 */
export class LocalProvider implements Provider {
  readonly #tokens: number;
  readonly #tokenDelayMs: number;

  constructor(options: { tokens: number; tokenDelayMs: number }) {
    this.#tokens = options.tokens;
    this.#tokenDelayMs = options.tokenDelayMs;
  }

  async *stream(request: ProviderRequest): AsyncIterable<ProviderEvent> {
    const inputTokens = countPromptTokens(request.turns);
    const count = Math.min(this.#tokens, request.maxOutputTokens);
    const seed = createHash('sha256')
      .update(request.turns.map((t) => t.content).join('\n'))
      .digest();
    for (let i = 0; i < count; i++) {
      if (this.#tokenDelayMs > 0) await delay(this.#tokenDelayMs, undefined, { signal: request.signal });
      request.signal.throwIfAborted();
      const word = WORDS[((seed[i % seed.length] as number) + i) % WORDS.length] as string;
      // a stop sequence ends the reply before the word that holds it (a word is a token here)
      if (request.stop?.some((sequence) => word.includes(sequence.trim()) && sequence.trim().length > 0)) {
        yield { type: 'end', usage: { inputTokens, outputTokens: i }, stopReason: 'stop_sequence' };
        return;
      }
      yield { type: 'delta', text: i === 0 ? word : ` ${word}` };
    }
    yield { type: 'end', usage: { inputTokens, outputTokens: count }, stopReason: count < this.#tokens ? 'max_tokens' : 'end_turn' };
  }
}
