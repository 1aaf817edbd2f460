import type { BedrockRuntimeClientConfig } from '@aws-sdk/client-bedrock-runtime';
import type { Config } from '../config.ts';
import type { ProviderName } from '../llm-catalog/model-registry.ts';
import { BedrockProvider } from './bedrock-provider.ts';
import { FlowiseProvider } from './flowise-provider.ts';
import { LocalProvider } from './local-provider.ts';
import { OpenAiProvider } from './openai-provider.ts';
import type { Provider } from './provider.ts';

export interface ProviderOverrides {
  /** extra Bedrock client settings (tests: a NodeHttpHandler and maxAttempts 1) */
  bedrock?: BedrockRuntimeClientConfig;
  /** replace a provider outright */
  custom?: Partial<Record<ProviderName, Provider>>;
}

/** The providers whose settings exist; `local` always does, so the platform works offline. */
export function createProviders(config: Config, overrides: ProviderOverrides = {}): Map<ProviderName, Provider> {
  const providers = new Map<ProviderName, Provider>();
  providers.set('local', new LocalProvider({ tokens: config.LOCAL_MODEL_TOKENS, tokenDelayMs: config.LOCAL_MODEL_TOKEN_DELAY_MS }));
  if (config.AWS_REGION) providers.set('bedrock', new BedrockProvider({ region: config.AWS_REGION, ...overrides.bedrock }));
  if (config.OPENAI_BASE_URL) {
    providers.set('openai', new OpenAiProvider({ baseUrl: config.OPENAI_BASE_URL, apiKey: config.OPENAI_API_KEY, timeoutMs: config.PROVIDER_TIMEOUT_MS }));
  }
  if (config.FLOWISE_URL) {
    providers.set('flowise', new FlowiseProvider({ baseUrl: config.FLOWISE_URL, apiKey: config.FLOWISE_API_KEY, timeoutMs: config.PROVIDER_TIMEOUT_MS }));
  }
  for (const [name, provider] of Object.entries(overrides.custom ?? {})) providers.set(name as ProviderName, provider);
  return providers;
}
