import {
  BedrockRuntimeClient,
  type BedrockRuntimeClientConfig,
  ConverseStreamCommand,
  type ConverseStreamCommandOutput,
  type ConverseStreamOutput,
  type Message,
  type SystemContentBlock,
} from '@aws-sdk/client-bedrock-runtime';
import { type Provider, ProviderError, type ProviderEvent, type ProviderRequest, type Usage } from './provider.ts';

/** Anything in the event stream that is an exception member rather than data */
function streamException(event: ConverseStreamOutput): string | undefined {
  for (const key of [
    'internalServerException',
    'modelStreamErrorException',
    'serviceUnavailableException',
    'throttlingException',
    'validationException',
  ] as const) {
    const member = (event as unknown as Record<string, { message?: string } | undefined>)[key];
    if (member) return `${key}: ${member.message ?? 'no detail'}`;
  }
  return undefined;
}

/**
 * AWS Bedrock through ConverseStream. Region and credentials come from the standard AWS environment; tests pass
 * `clientConfig` (a NodeHttpHandler nock can see, maxAttempts 1). The abort signal goes to `send`, which tears
 * down the HTTP response (leaving the iterator alone would keep the connection reading).
 */
export class BedrockProvider implements Provider {
  readonly #client: BedrockRuntimeClient;

  constructor(clientConfig: BedrockRuntimeClientConfig) {
    this.#client = new BedrockRuntimeClient(clientConfig);
  }

  async *stream(request: ProviderRequest): AsyncIterable<ProviderEvent> {
    const system: SystemContentBlock[] = request.turns.filter((t) => t.role === 'system').map((t) => ({ text: t.content }));
    const messages: Message[] = request.turns
      .filter((t) => t.role !== 'system')
      .map((t) => ({ role: t.role as 'user' | 'assistant', content: [{ text: t.content }] }));
    let response: ConverseStreamCommandOutput;
    try {
      response = await this.#client.send(
        new ConverseStreamCommand({
          modelId: request.model.upstreamModel,
          messages,
          system: system.length > 0 ? system : undefined,
          inferenceConfig: { maxTokens: request.maxOutputTokens, temperature: request.temperature, stopSequences: request.stop },
        }),
        { abortSignal: request.signal },
      );
    } catch (error) {
      if (request.signal.aborted) throw error;
      throw new ProviderError('bedrock', `Bedrock refused the request: ${(error as Error).name}`, { cause: error });
    }
    if (!response.stream) throw new ProviderError('bedrock', 'Bedrock answered without a stream');
    let usage: Usage | undefined;
    let stopReason = 'end_turn';
    try {
      for await (const event of response.stream) {
        const exception = streamException(event);
        if (exception) throw new ProviderError('bedrock', `Bedrock stream failed: ${exception}`);
        const text = event.contentBlockDelta?.delta?.text;
        if (text) yield { type: 'delta', text };
        if (event.messageStop?.stopReason) stopReason = event.messageStop.stopReason;
        const reported = event.metadata?.usage;
        if (reported) usage = { inputTokens: reported.inputTokens ?? 0, outputTokens: reported.outputTokens ?? 0 };
      }
    } catch (error) {
      if (request.signal.aborted || error instanceof ProviderError) throw error;
      throw new ProviderError('bedrock', `Bedrock stream failed: ${(error as Error).name}: ${(error as Error).message}`, { cause: error });
    }
    yield { type: 'end', usage, stopReason };
  }
}
