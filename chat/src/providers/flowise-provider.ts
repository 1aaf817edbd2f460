import { type Provider, ProviderError, type ProviderEvent, type ProviderRequest, type Usage } from './provider.ts';
import { postJson, readServerSentEvents } from './sse-reader.ts';

interface FlowiseEvent {
  event?: string;
  data?: unknown;
}

/**
 * Flowise prediction API with streaming: `POST /api/v1/prediction/:chatflowId` answers SSE whose data lines are
 * `{event, data}` (start, token, metadata, usageMetadata, error, end). The conversation so far goes as `history`.
 */
export class FlowiseProvider implements Provider {
  readonly #baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: { baseUrl: string; apiKey?: string; timeoutMs: number }) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs;
  }

  async *stream(request: ProviderRequest): AsyncIterable<ProviderEvent> {
    const turns = request.turns.filter((t) => t.role !== 'system');
    const question = turns.at(-1)?.content ?? '';
    const history = turns.slice(0, -1).map((t) => ({ role: t.role === 'user' ? 'userMessage' : 'apiMessage', content: t.content }));
    let response: Response;
    try {
      response = await postJson(
        `${this.#baseUrl}/api/v1/prediction/${encodeURIComponent(request.model.upstreamModel)}`,
        { question, history, streaming: true, overrideConfig: { sessionId: request.sessionId } },
        { headers: this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}, signal: request.signal, timeoutMs: this.#timeoutMs },
      );
    } catch (error) {
      if (request.signal.aborted) throw error;
      throw new ProviderError('flowise', 'Flowise is unreachable', { cause: error });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new ProviderError('flowise', `Flowise answered ${response.status}`);
    }
    let usage: Usage | undefined;
    for await (const message of readServerSentEvents(response.body)) {
      let parsed: FlowiseEvent;
      try {
        parsed = JSON.parse(message.data) as FlowiseEvent;
      } catch {
        // older Flowise versions send `event: token` with the bare text as data
        if (message.event === 'token') yield { type: 'delta', text: message.data };
        continue;
      }
      const kind = parsed.event ?? message.event;
      if (kind === 'token' && typeof parsed.data === 'string' && parsed.data) yield { type: 'delta', text: parsed.data };
      else if (kind === 'error') throw new ProviderError('flowise', `Flowise failed: ${typeof parsed.data === 'string' ? parsed.data : 'no detail'}`);
      else if (kind === 'usageMetadata' && parsed.data && typeof parsed.data === 'object') {
        const reported = parsed.data as { input_tokens?: number; output_tokens?: number };
        usage = { inputTokens: reported.input_tokens ?? 0, outputTokens: reported.output_tokens ?? 0 };
      } else if (kind === 'end') break;
    }
    yield { type: 'end', usage, stopReason: 'end_turn' };
  }
}
