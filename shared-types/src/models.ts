/**
 * The model catalog both chat (providers, limits, access) and accounting (seed prices) read, so model ids
 * cannot drift between them. Ops may point MODELS_FILE at another file of the same shape.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ROLES } from './roles.ts';

export const modelEntry = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
  displayName: z.string().min(1),
  provider: z.enum(['bedrock', 'openai', 'flowise', 'local']),
  /** Bedrock model id, OpenAI model name, or Flowise chatflow id */
  upstreamModel: z.string().min(1),
  defaultMaxOutputTokens: z.number().int().positive(),
  maxOutputTokens: z.number().int().positive(),
  contextTokens: z.number().int().positive(),
  /** who may use it: everyone, some roles, or listed user ids (like Flowise chatflow access lists) */
  access: z.object({ public: z.boolean().optional(), roles: z.array(z.enum(ROLES)).optional(), users: z.array(z.string()).optional() }),
  /** credits per 1,000 tokens; nonzero so any output costs at least 1 credit */
  prices: z.object({ inputPer1k: z.number().int().positive(), outputPer1k: z.number().int().positive() }),
});
export type ModelEntry = z.infer<typeof modelEntry>;
export const modelCatalog = z.object({ models: z.array(modelEntry).min(1) });

export const DEFAULT_MODELS_FILE = new URL('../config/models.json', import.meta.url).pathname;

export function loadModelCatalog(file = process.env.MODELS_FILE ?? DEFAULT_MODELS_FILE): ModelEntry[] {
  const parsed = modelCatalog.parse(JSON.parse(readFileSync(file, 'utf8')));
  const ids = new Set<string>();
  for (const model of parsed.models) {
    if (ids.has(model.id)) throw new Error(`duplicate model id ${model.id}`);
    ids.add(model.id);
  }
  return parsed.models;
}

/** Integer credits for a token count: per-1k prices, rounded up (DESIGN section 8). */
export function creditsFor(prices: { inputPer1k: number; outputPer1k: number }, inputTokens: number, outputTokens: number): number {
  return Math.ceil((inputTokens * prices.inputPer1k) / 1000) + Math.ceil((outputTokens * prices.outputPer1k) / 1000);
}
