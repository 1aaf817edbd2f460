import { type Provider, ProviderError, type ProviderEvent, type ProviderRequest, type Usage } from './provider.ts';
import { postJson, readServerSentEvents } from './sse-reader.ts';

interface ChatCompletionChunk {
  choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

/** Any OpenAI-compatible server (vLLM, Ollama, llama.cpp, OpenAI): streamed chat completions with usage in the last chunk. */
export class OpenAiProvider implements Provider {
  readonly #url: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: { baseUrl: string; apiKey?: string; timeoutMs: number }) {
    const base = options.baseUrl.replace(/\/+$/, '');
    this.#url = base.endsWith('/v1') ? `${base}/chat/completions` : `${base}/v1/chat/completions`;
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs;
  }

  async *stream(request: ProviderRequest): AsyncIterable<ProviderEvent> {
    let response: Response;
    try {
      response = await postJson(
        this.#url,
        {
          model: request.model.upstreamModel,
          messages: request.turns,
          max_tokens: request.maxOutputTokens,
          stream: true,
          stream_options: { include_usage: true },
          temperature: request.temperature,
          stop: request.stop,
        },
        { headers: this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}, signal: request.signal, timeoutMs: this.#timeoutMs },
      );
    } catch (error) {
      if (request.signal.aborted) throw error;
      throw new ProviderError('openai', 'OpenAI-compatible server is unreachable', { cause: error });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new ProviderError('openai', `OpenAI-compatible server answered ${response.status}`);
    }
    let usage: Usage | undefined;
    let stopReason = 'stop';
    for await (const message of readServerSentEvents(response.body)) {
      if (message.data === '[DONE]') break;
      let chunk: ChatCompletionChunk;
      try {
        chunk = JSON.parse(message.data) as ChatCompletionChunk;
      } catch {
        throw new ProviderError('openai', 'OpenAI-compatible server sent a malformed chunk');
      }
      if (chunk.error) throw new ProviderError('openai', `OpenAI-compatible server failed: ${chunk.error.message ?? 'no detail'}`);
      const choice = chunk.choices?.[0];
      if (choice?.delta?.content) yield { type: 'delta', text: choice.delta.content };
      if (choice?.finish_reason) stopReason = choice.finish_reason;
      if (chunk.usage) usage = { inputTokens: chunk.usage.prompt_tokens ?? 0, outputTokens: chunk.usage.completion_tokens ?? 0 };
    }
    yield { type: 'end', usage, stopReason };
  }
}
